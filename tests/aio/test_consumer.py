"""AsyncConsumer: poll, async for, commit, seek, position, close; waking by appends of
other processes; cancellation; no thread per waiting poll."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import mqlog
import mqlog.aio
from mqlog import TopicPartition
from mqlog.logstore import append_watch

from . import run, started

TP = TopicPartition("t", 0)
#: Most threads of the shared executor (group members' poll rounds run there).
WORKERS = 4


def pool_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("mqlog-aio")}


def new_threads(before: set[threading.Thread]) -> set[threading.Thread]:
    """Threads started since ``before`` was taken, other than the executor's."""
    return set(threading.enumerate()) - before - pool_threads()


def append_from_another_process(log_dir: Path, value: bytes) -> None:
    """Append ``value`` to t/0 in a process of its own."""
    code = ("import sys, mqlog\n"
            "with mqlog.open(sys.argv[1]) as log:\n"
            "    log.append('t', 0, [sys.argv[2].encode()])\n")
    subprocess.run([sys.executable, "-c", code, str(log_dir), value.decode()], check=True,
                   timeout=60)


def test_poll_assigned_partitions(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t")
            log.log.append("t", 0, [b"a", b"b", b"c"])
            consumer = log.consumer(auto_offset_reset="earliest")
            consumer.assign([TP])
            assert consumer.assignment() == {TP}
            assert [m.value for m in await consumer.poll(max_records=2)] == [b"a", b"b"]
            assert await consumer.position(TP) == 2
            assert [m.value for m in await consumer.poll()] == [b"c"]
            assert await consumer.poll(timeout=0.05) == []
            consumer.seek(TP, 1)
            assert [m.offset for m in await consumer.poll()] == [1, 2]
            await consumer.seek_to_beginning()
            assert await consumer.position(TP) == 0
            await consumer.seek_to_end(TP)
            assert await consumer.position(TP) == 3
            with pytest.raises(mqlog.ConfigError):
                await consumer.poll(timeout=-1)
            with pytest.raises(mqlog.IllegalStateError):
                await consumer.commit()

    run(main())


def test_group_member_polls_commits_and_resumes(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t", 2)
            await log.producer().send_many("t", [b"a", b"b"], keys=[b"1", b"2"])
            async with log.consumer("g", ["t"], auto_offset_reset="earliest") as consumer:
                got = await consumer.poll(timeout=30)
                while len(got) < 2:
                    got += await consumer.poll(timeout=30)
                assert sorted(m.value for m in got) == [b"a", b"b"]
                committed = await consumer.commit()
                assert sum(committed.values()) == 2
                assert consumer.assignment() == {TopicPartition("t", 0), TopicPartition("t", 1)}
                for tp, offset in committed.items():
                    assert await consumer.committed(tp) == offset
            await log.producer().send("t", b"c", partition=0)
            async with log.consumer("g", "t") as again:  # resumes from the commits
                assert [m.value for m in await again.poll(timeout=30)] == [b"c"]

    run(main())


def test_unknown_topic_and_group_rules_are_checked_at_once(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t")
            with pytest.raises(mqlog.UnknownTopicError):
                log.consumer("g", ["nope"])
            with pytest.raises(mqlog.IllegalStateError):
                log.consumer(None, ["t"])
            with pytest.raises(mqlog.ConfigError):
                log.consumer("g", ["t"], assignor="nope")

    run(main())


def test_async_for_ends_after_consumer_timeout(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t")
            log.log.append("t", 0, [b"a", b"b"])
            consumer = log.consumer("g", "t", auto_offset_reset="earliest",
                                    consumer_timeout_ms=200)
            assert [m.value async for m in consumer] == [b"a", b"b"]
            await consumer.close()
            await consumer.close()
            with pytest.raises(mqlog.LogClosedError):
                await consumer.poll()

    run(main())


def test_a_waiting_poll_is_woken_by_another_process(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t")
            consumer = log.consumer("g", "t", auto_offset_reset="earliest")
            await consumer.subscribe("t")
            waiting = asyncio.create_task(consumer.poll(timeout=None))
            await started(waiting)
            await asyncio.to_thread(append_from_another_process, log_dir, b"hello")
            async with asyncio.timeout(60):
                assert [m.value for m in await waiting] == [b"hello"]

    run(main())


def test_waiting_polls_and_receives_start_no_threads(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t")
            members = [log.consumer(f"g{i}", "t") for i in range(5)]
            for member in members:
                await member.poll()  # joined (each membership has its watchdog thread)
            readers = [log.consumer() for _ in range(50)]
            for reader in readers:
                reader.assign([TP])
                await reader.seek_to_end()
            workers = [log.queue("q", "t") for _ in range(20)]
            before = set(threading.enumerate())
            tasks = [asyncio.create_task(c.poll(timeout=None)) for c in members + readers]
            tasks += [asyncio.create_task(w.receive(timeout=None)) for w in workers]
            await started(*tasks)
            watch = append_watch(log.log.engine)
            assert watch.waiting() == len(tasks)
            assert new_threads(before) == set()
            assert len(pool_threads()) <= WORKERS
            await asyncio.to_thread(append_from_another_process, log_dir, b"x")
            polled = tasks[:len(members) + len(readers)]
            async with asyncio.timeout(60):
                for task in polled:
                    assert [m.value for m in await task] == [b"x"]
                received, _ = await asyncio.wait(tasks[len(polled):],
                                                 return_when=asyncio.FIRST_COMPLETED)
            assert [m.value for task in received for m in task.result()] == [b"x"]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            assert watch.waiting() == 0

    run(main())


def test_a_cancelled_waiting_poll_loses_nothing(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t")
            consumer = log.consumer("g", "t", auto_offset_reset="earliest")
            waiting = asyncio.create_task(consumer.poll(timeout=None))
            await started(waiting)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            assert append_watch(log.log.engine).waiting() == 0
            log.log.append("t", 0, [b"a"])
            assert [m.value for m in await consumer.poll(timeout=30)] == [b"a"]

    run(main())


def test_a_poll_cancelled_while_fetching_gives_its_records_back(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t")
            consumer = log.consumer("g", "t", auto_offset_reset="earliest",
                                    enable_auto_commit=True, auto_commit_interval_ms=1)
            await consumer.poll()  # joined; nothing there yet
            log.log.append("t", 0, [b"a", b"b"])
            await asyncio.sleep(0.01)  # an auto-commit is due: the round is not quick
            fetching = asyncio.create_task(consumer.poll())
            await asyncio.sleep(0)  # its round runs in the executor now
            fetching.cancel()
            with pytest.raises(asyncio.CancelledError):
                await fetching
            assert [m.value for m in await consumer.poll(timeout=30)] == [b"a", b"b"]

    run(main())


def test_a_member_reads_on_the_loop_and_does_group_work_in_the_executor(
        log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t")
            consumer = log.consumer("g", "t", auto_offset_reset="earliest",
                                    enable_auto_commit=True, auto_commit_interval_ms=60_000,
                                    group_check_interval_ms=60_000)
            await consumer.poll()  # joined; nothing there yet
            sync_consumer = consumer.consumer
            calls: list[tuple[str, str, bool]] = []  # (call, thread, returned records)

            def recording(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
                def recorded(*args: Any, **kwargs: Any) -> Any:
                    result = call(*args, **kwargs)
                    calls.append((name, threading.current_thread().name, bool(result)))
                    return result
                return recorded

            sync_consumer.poll = recording("poll", sync_consumer.poll)  # type: ignore
            sync_consumer.poll_quick = recording(  # type: ignore
                "poll_quick", sync_consumer.poll_quick)
            log.log.append("t", 0, [b"a"])
            assert [m.value for m in await consumer.poll(timeout=30)] == [b"a"]
            assert calls == [("poll_quick", threading.current_thread().name, True)]

            sync_consumer.seek(TopicPartition("t", 0), 0)
            await consumer.commit()  # the executor; ends with nothing due
            sync_consumer.config = dataclasses.replace(sync_consumer.config,
                                                       auto_commit_interval_ms=1)
            await asyncio.sleep(0.01)  # an auto-commit is due now
            calls.clear()
            assert [m.value for m in await consumer.poll(timeout=30)] == [b"a"]
            [(quick, _, quick_read), (full, thread, full_read)] = calls
            assert (quick, quick_read, full, full_read) == ("poll_quick", False, "poll", True)
            assert thread.startswith("mqlog-aio")
            assert await consumer.committed(TopicPartition("t", 0)) == 1

    run(main())


def test_closing_the_log_ends_waiting_consumers(log_dir: Path) -> None:
    async def main() -> None:
        log = await mqlog.aio.open(log_dir)
        await log.create_topic("t")
        consumer = log.consumer("g", "t")
        await consumer.subscribe("t")
        waiting = asyncio.create_task(consumer.poll(timeout=None))
        iterating = asyncio.create_task(_drain(consumer))
        await started(waiting, iterating)
        await consumer.close()
        async with asyncio.timeout(60):
            with pytest.raises(mqlog.LogClosedError):
                await waiting
            assert await iterating == []
        await log.close()
        await log.close()

    run(main())


async def _drain(consumer: mqlog.aio.AsyncConsumer) -> list[bytes]:
    return [m.value async for m in consumer]


def test_a_failed_join_is_reported_and_tried_again(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t")
            consumer = log.consumer("g", "t", auto_offset_reset="earliest")
            log.log.delete_topic("t")
            first, second = await asyncio.gather(consumer.poll(), consumer.poll(),
                                                 return_exceptions=True)
            assert isinstance(first, mqlog.UnknownTopicError)
            assert isinstance(second, mqlog.UnknownTopicError)
            await log.create_topic("t")
            log.log.append("t", 0, [b"a"])
            assert [m.value for m in await consumer.poll(timeout=30)] == [b"a"]

    run(main())


def test_columns_pause_resume_seek_to_time_and_lag(log_dir: Path, clock) -> None:  # noqa: ANN001
    async def main() -> None:
        async with mqlog.aio.open(log_dir, clock=clock) as log:
            await log.create_topic("t", 2)
            log.log.append("t", 0, [b"a", b"b"])
            clock.advance(1000)
            log.log.append("t", 0, [b"c"])
            log.log.append("t", 1, [b"x"])
            consumer = log.consumer("g", "t", auto_offset_reset="earliest")
            await consumer.poll()  # joined: owns both partitions
            await consumer.seek_to_beginning()
            consumer.pause(TopicPartition("t", 1))
            assert consumer.paused() == {TopicPartition("t", 1)}
            [columns] = await consumer.poll_columns()
            assert (columns.partition, columns.values()) == (0, [b"a", b"b", b"c"])
            assert await consumer.lag() == {TP: 0, TopicPartition("t", 1): 1}
            consumer.resume()
            assert [m.value for m in await consumer.poll()] == [b"x"]
            await consumer.seek_to_time(clock.now_ms, TP)
            assert [m.value for m in await consumer.poll()] == [b"c"]

    run(main())
