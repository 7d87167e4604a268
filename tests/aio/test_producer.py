"""AsyncProducer: await send / send_many / flush / close, as the synchronous producer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import mqlog
import mqlog.aio

from . import run


def test_send_returns_where_the_record_was_written(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t", 2)
            producer = log.producer()
            first = await producer.send("t", b"a", partition=1)
            second = await producer.send("t", "b", key=b"k", partition=1,
                                         headers={"h": b"1"}, timestamp=1234)
            assert (first.topic, first.partition, first.offset) == ("t", 1, 0)
            assert (second.partition, second.offset, second.timestamp) == (1, 1, 1234)
            records = log.log.read("t", 1, 0)
            assert [(r.value, r.key, dict(r.headers)) for r in records] == [
                (b"a", None, {}), (b"b", b"k", {"h": b"1"})]

    run(main())


def test_many_sends_at_once_all_complete_in_order(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t")
            producer = log.producer()
            results = await asyncio.gather(*(producer.send("t", b"%d" % i) for i in range(2000)))
            assert [r.offset for r in results] == list(range(2000))

    run(main())


def test_send_many_returns_offsets_per_partition(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t", 3)
            producer = log.producer()
            keyless = await producer.send_many("t", [b"a", b"b", b"c"])
            [(partition, offsets)] = keyless.items()
            assert offsets == range(0, 3)
            assert [r.value for r in log.log.read("t", partition, 0)] == [b"a", b"b", b"c"]
            keyed = await producer.send_many("t", [b"x", b"y"], keys=[b"k1", b"k2"])
            assert sum(len(r) for r in keyed.values()) == 2
            empty = await producer.send_many("t", [])
            assert list(empty.values()) == [range(0)]

    run(main())


def test_bad_sends_raise_before_anything_is_written(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t", max_record_bytes=10)
            producer = log.producer()
            with pytest.raises(mqlog.UnknownTopicError):
                await producer.send("nope", b"a")
            with pytest.raises(TypeError):
                await producer.send("t", 5)  # type: ignore[arg-type]
            with pytest.raises(mqlog.RecordTooLargeError):
                await producer.send("t", b"x" * 11)
            with pytest.raises(mqlog.RecordTooLargeError):
                await producer.send_many("t", [b"x" * 11])
            assert log.log.end_offset("t", 0) == 0

    run(main())


def test_flush_and_close(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t", durability="always")
            async with log.producer(linger_ms=50) as producer:
                await producer.send("t", b"a")
                assert await producer.flush() == 0
            with pytest.raises(mqlog.LogClosedError):
                await producer.send("t", b"b")
            await producer.close()  # idempotent
            assert log.log.end_offset("t", 0) == 1

    run(main())


def test_a_cancelled_send_still_writes_its_record(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t")
            producer = log.producer()
            waiting = producer.send("t", b"a")
            waiting.cancel()
            assert await producer.flush() == 0
            assert waiting.cancelled()
            assert (await producer.send("t", b"b")).offset == 1
            assert [r.value for r in log.log.read("t", 0, 0)] == [b"a", b"b"]

    run(main())


def test_sends_spread_over_batches_each_get_their_own_record(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t", 3)
            producer = log.producer(linger_ms=50)
            sync_producer = producer.producer
            sends = []
            for i in range(300):
                if i % 7 == 0:  # records of the synchronous producer in the same batches
                    sync_producer.send("t", b"sync", partition=i % 3)
                sends.append(producer.send("t", b"%d" % i, partition=i % 3,
                                           timestamp=i if i % 5 == 0 else None))
            results = await asyncio.gather(*sends)
            for i, result in enumerate(results):
                assert result.partition == i % 3
                [record] = log.log.read("t", result.partition, result.offset, max_records=1)
                assert record.value == b"%d" % i
                assert record.timestamp == result.timestamp
                if i % 5 == 0:
                    assert result.timestamp == i

    run(main())


def test_a_failed_append_raises_at_every_await_of_its_batch(log_dir: Path) -> None:
    async def main() -> None:
        async with mqlog.aio.open(log_dir) as log:
            await log.create_topic("t", 2)
            await log.create_topic("u")
            producer = log.producer(linger_ms=60_000)
            doomed = [producer.send("t", b"x", partition=0) for _ in range(3)]
            kept = producer.send("u", b"y")
            log.log.delete_topic("t")
            await producer.flush()
            for send in doomed:
                with pytest.raises(mqlog.MqlogError):
                    await send
            assert (await kept).offset == 0

    run(main())
