"""AsyncQueueConsumer: receive, async for, await ack / nack / extend with the
synchronous semantics; cancellation holds nothing; durable queues."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import mqlog
import mqlog.aio
from mqlog.logstore import append_watch
from tests.conftest import FakeClock

from . import run, started


def test_receive_and_ack(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t")
            log.log.append("t", 0, [b"a", b"b"])
            async with log.queue("q", "t") as worker:
                messages = await worker.receive(max_messages=10)
                assert [(m.value, m.offset, m.delivery_count) for m in messages] == [
                    (b"a", 0, 1), (b"b", 1, 1)]
                assert isinstance(messages[0], mqlog.Message)
                for message in messages:
                    await message.ack()
                assert log.log.pending("q") == []
                assert await worker.receive(timeout=0.05) == []
                with pytest.raises(mqlog.ConfigError):
                    await worker.receive(max_messages=0)

    run(main())


def test_nack_redelivers_with_the_reason_and_count(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t")
            log.log.append("t", 0, [b"a"])
            worker = log.queue("q", "t", max_deliveries=2)
            [first] = await worker.receive()
            await first.nack(delay_s=0, reason="try again")
            [second] = await worker.receive(timeout=30)
            assert (second.offset, second.delivery_count) == (0, 2)
            await second.nack(delay_s=0, reason="gave up")
            assert await worker.receive(timeout=0.2) == []  # dead-lettered after 2
            [letter] = log.log.dead_letters("t.dlq")
            assert letter.reason == "gave up"

    run(main())


def test_a_nacked_message_with_a_delay_wakes_a_waiting_receive(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t")
            log.log.append("t", 0, [b"a"])
            worker = log.queue("q", "t")
            [message] = await worker.receive()
            await message.nack(delay_s=0.3)
            async with asyncio.timeout(30):
                [again] = await worker.receive(timeout=None)  # no append comes: due time
            assert again.delivery_count == 2

    run(main())


def test_extend_and_a_lost_lock(log_dir: Path, clock: FakeClock) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir, clock=clock) as log:
            await log.create_topic("t")
            log.log.append("t", 0, [b"a", b"b"])
            worker, other = log.queue("q", "t", ack_timeout_s=1), log.queue("q", "t")
            kept, lost = await worker.receive(max_messages=2)
            await kept.extend(10)
            clock.advance(2000)  # lost's lock ran out; kept's did not
            [taken] = await other.receive()
            assert (taken.offset, taken.delivery_count) == (lost.offset, 2)
            with pytest.raises(mqlog.DeliveryLostError):
                await lost.ack()
            await kept.ack()
            await taken.ack()
            assert log.log.pending("q") == []

    run(main())


def test_ack_many_and_messages_of_another_worker(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t")
            log.log.append("t", 0, [b"a", b"b", b"c"])
            worker, other = log.queue("q", "t"), log.queue("q", "t")
            messages = await worker.receive(max_messages=3)
            with pytest.raises(mqlog.ConfigError):
                await other.ack(messages[0])
            with pytest.raises(mqlog.ConfigError):
                await other.ack_many(messages)
            await worker.ack_many(messages)
            assert log.log.pending("q") == []

    run(main())


def test_async_for_and_close(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t")
            worker = log.queue("q", "t")
            seen: list[bytes] = []

            async def handle() -> None:
                async for message in worker:
                    seen.append(message.value)
                    await message.ack()
                    if len(seen) == 2:
                        await worker.close()

            handling = asyncio.create_task(handle())
            await started(handling)
            producer = log.producer()
            await producer.send("t", b"a")
            await producer.send("t", b"b")
            async with asyncio.timeout(60):
                await handling
            assert seen == [b"a", b"b"]
            with pytest.raises(mqlog.LogClosedError):
                await worker.receive()

    run(main())


def test_closing_a_worker_frees_what_it_held(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t")
            log.log.append("t", 0, [b"a"])
            worker, other = log.queue("q", "t"), log.queue("q", "t")
            [held] = await worker.receive()
            await worker.close()
            with pytest.raises(mqlog.LogClosedError):
                await held.ack()
            [again] = await other.receive(timeout=30)
            assert again.offset == held.offset

    run(main())


def test_a_cancelled_waiting_receive_holds_nothing(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t")
            worker, other = log.queue("q", "t"), log.queue("q", "t")
            waiting = asyncio.create_task(worker.receive(timeout=None))
            await started(waiting)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            assert append_watch(log.log.engine).waiting() == 0
            log.log.append("t", 0, [b"a"])
            [message] = await other.receive(timeout=30)
            assert message.delivery_count == 1

    run(main())


def test_durable_queues_settle_in_the_executor(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t", durability="always")
            log.log.append("t", 0, [b"a", b"b"])
            worker = log.queue("q", "t")
            assert worker.blocking
            [a, b] = await worker.receive(max_messages=2)
            await a.ack()
            await b.nack(delay_s=0)
            [again] = await worker.receive(timeout=30)
            await again.extend(5)
            await again.ack()
            assert log.log.pending("q") == []

    run(main())


def test_a_receive_cancelled_while_taking_releases_what_it_took(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t", durability="always")
            log.log.append("t", 0, [b"a"])
            # Held by the worker, the message would come back only after 10 minutes.
            worker = log.queue("q", "t", ack_timeout_s=600)
            other = log.queue("q", "t")
            taking = asyncio.create_task(worker.receive())
            await asyncio.sleep(0)  # its take runs in the executor now
            taking.cancel()
            with pytest.raises(asyncio.CancelledError):
                await taking
            # The other worker gets it: released by the cancelled receive (a second
            # delivery), or taken first if that take lost the race (the first).
            [message] = await other.receive(timeout=60)
            assert message.value == b"a"
            assert [p.member_id for p in log.log.pending("q")] == [other.queue.member_id]

    run(main())


def test_claim_takes_over_idle_messages(log_dir: Path, clock: FakeClock) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir, clock=clock) as log:
            await log.create_topic("t")
            log.log.append("t", 0, [b"a"])
            worker, other = log.queue("q", "t"), log.queue("q", "t")
            [held] = await worker.receive()
            assert await other.claim(min_idle_s=5) == []
            clock.advance(6000)
            [claimed] = await other.claim(min_idle_s=5)
            assert (claimed.offset, claimed.delivery_count) == (held.offset, 2)
            with pytest.raises(mqlog.DeliveryLostError):
                await held.ack()
            await claimed.ack()
            assert log.log.pending("q") == []

    run(main())
