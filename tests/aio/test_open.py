"""mqlog.aio.open, the log's lifetime, and the synchronous hooks the asyncio clients use."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

import mqlog
import mqlog.aio
from mqlog.logstore import append_watch

from . import run, started


def test_open_is_awaitable_and_an_async_context_manager(log_dir: Path) -> None:
    async def main() -> None:
        log = await mqlog.aio.open(log_dir)
        assert isinstance(log, mqlog.aio.AsyncLog)
        description = await log.create_topic("t", 3)
        assert len(description.partitions) == 3
        await log.close()
        await log.close()
        assert log.log.engine.closed
        async with mqlog.aio.open(log_dir, create=False) as again:
            assert "t" in again.log.topics()
            with pytest.raises(mqlog.TopicExistsError):
                await again.create_topic("t")
        assert again.log.engine.closed

    run(main())


def test_bad_targets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(mqlog.ConfigError, match="kafka://"):
        mqlog.aio.open("http://localhost:9092")

    async def main() -> None:
        with pytest.raises(mqlog.MqlogError, match="does not exist"):
            await mqlog.aio.open(tmp_path / "missing", create=False)

    run(main())


def test_one_append_watch_per_loop_per_log(log_dir: Path) -> None:
    async def watches() -> tuple[object, object]:
        async with mqlog.aio.open(log_dir) as log:
            engine = log.log.engine
            return append_watch(engine), append_watch(engine)

    first, same = run(watches())
    assert first is same
    assert run(watches())[0] is not first


def test_closing_the_log_closes_its_clients(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t")
            producer = log.producer()
            await producer.send("t", b"a")
            worker = log.queue("q", "t")
            waiting = asyncio.create_task(worker.receive(timeout=None))
            [message] = await waiting
        with pytest.raises(mqlog.LogClosedError):
            await producer.send("t", b"b")
        with pytest.raises(mqlog.LogClosedError):
            await message.ack()

    run(main())


def test_sync_send_many_reports_its_delivery(log_dir: Path) -> None:
    reports: list[tuple[dict[int, range] | None, BaseException | None]] = []
    with mqlog.open(log_dir) as log:
        log.create_topic("t", 2)
        producer = log.producer()
        delivery = producer.send_many("t", [b"a", b"b"], keys=[b"1", b"2"],
                                      on_delivery=lambda r, e: reports.append((r, e)))
        with pytest.raises(TypeError):
            producer.send_many("t", [b"a"], on_delivery=5)  # type: ignore[arg-type]
        producer.close()  # the sender thread has run every callback
        assert reports == [(delivery.result(30), None)]
        assert sum(len(offsets) for offsets in delivery.result(30).values()) == 2


def test_sync_next_due_ms(log_dir: Path, clock) -> None:  # noqa: ANN001 - fixture
    with mqlog.open(log_dir, clock=clock) as log:
        log.create_topic("t")
        log.append("t", 0, [b"a"])
        worker = log.queue("q", "t", ack_timeout_s=5)
        assert worker.next_due_ms() is None
        [message] = worker.receive()
        assert worker.next_due_ms() in (clock.now_ms + 5000, clock.now_ms + 5001)  # lock ends
        message.nack(delay_s=2)
        assert worker.next_due_ms() in (clock.now_ms + 2000, clock.now_ms + 2001)


def test_closing_the_log_ends_waiting_polls_and_receives(log_dir: Path) -> None:
    async def main() -> None:
        problems: list[dict] = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, c: problems.append(c))
        log = await mqlog.aio.open(log_dir)
        await log.create_topic("t")
        reader = log.consumer()
        reader.assign([mqlog.TopicPartition("t", 0)])
        member = log.consumer("g", "t")
        await member.poll()
        worker = log.queue("q", "t")
        waiting = [asyncio.create_task(reader.poll(timeout=None)),
                   asyncio.create_task(member.poll(timeout=None)),
                   asyncio.create_task(worker.receive(timeout=None))]
        await started(*waiting)
        await log.close()
        async with asyncio.timeout(60):
            outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        assert [type(outcome) for outcome in outcomes] == [mqlog.LogClosedError] * 3
        await asyncio.sleep(0.05)  # a poll timer left behind would have fired by now
        assert problems == []

    run(main())


def test_a_forked_child_gets_an_executor_of_its_own(log_dir: Path) -> None:
    """The shared executor's threads stay in the parent: a child after fork starts
    its own pool (else its blocking calls would wait forever)."""
    async def in_parent() -> None:
        async with mqlog.aio.open(log_dir):  # the parent's pool has threads now
            pass

    run(in_parent())
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit status
        code = 1
        try:
            async def in_child() -> None:
                async with mqlog.aio.open(log_dir) as log:
                    await log.create_topic("forked")

            asyncio.run(asyncio.wait_for(in_child(), 60))
            code = 0
        finally:
            os._exit(code)
    _pid, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
