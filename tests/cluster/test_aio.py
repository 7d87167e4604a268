"""mqlog.aio over a ``kafka://`` URL, against ``mqlog serve`` and Tansu: every verb of
the producer and the consumer (groups too), the same types and errors as the
synchronous cluster API, errors at the await, cancellation, waiting polls woken by
sends with no thread per waiting call, and closing."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import mqlog
import mqlog.aio
from mqlog.aio._blocking import WORKERS
from mqlog.consumer import TopicPartition
from tests.aio import run, started

from .conftest import GROUP_OPTIONS, Broker, skip_on_tansu, unique
from .test_log_api import TANSU_TIME

#: Longest a group may take to hand out its partitions (Tansu waits the rebalance timeout).
JOIN_TIMEOUT_S = 60.0


async def poll_until(consumer: mqlog.aio.AsyncConsumer, count: int) -> list[mqlog.Message]:
    """At least ``count`` records, polled for up to JOIN_TIMEOUT_S."""
    got: list[mqlog.Message] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + JOIN_TIMEOUT_S
    while len(got) < count and loop.time() < deadline:
        got += await consumer.poll(timeout=1.0)
    return got


def pool_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("mqlog-aio")}


def test_open_gives_an_async_log_over_the_cluster_log(broker: Broker) -> None:
    async def main() -> None:
        async with mqlog.aio.open(broker.url) as log:
            assert isinstance(log, mqlog.aio.AsyncLog)
            assert isinstance(log.log, mqlog.Log) and log.log.url == broker.url  # type: ignore[attr-defined]
            name = unique("topic")
            description = await log.create_topic(name, 2)
            assert len(description.partitions) == 2
            with pytest.raises(mqlog.TopicExistsError):
                await log.create_topic(name, 2)
            with pytest.raises(mqlog.UnsupportedError, match="queue"):
                log.queue("workers", name)
        await log.close()  # idempotent

    run(main())


def test_send_send_many_flush_and_close(broker: Broker) -> None:
    async def main() -> None:
        async with mqlog.aio.open(broker.url) as log:
            name = unique("topic")
            await log.create_topic(name, 2)
            producer = log.producer()
            first = await producer.send(name, b"a", partition=1, key=b"k",
                                        headers={"h": b"1"}, timestamp=1_700_000_000_000)
            assert isinstance(first, mqlog.RecordMetadata)
            assert (first.topic, first.partition, first.offset) == (name, 1, 0)
            assert first.timestamp == 1_700_000_000_000
            results = await asyncio.gather(*(producer.send(name, b"%d" % i, partition=0)
                                             for i in range(500)))
            assert [r.offset for r in results] == list(range(500))
            many = await producer.send_many(name, [b"x", b"y"], keys=[b"k1", b"k2"])
            assert sum(len(offsets) for offsets in many.values()) == 2
            assert await producer.send_many(name, []) == {}
            assert await producer.flush() == 0
            [record] = log.log.read(name, 1, 0, max_records=1)
            assert (record.value, record.key, dict(record.headers)) == (b"a", b"k", {"h": b"1"})
            await producer.close()
            await producer.close()
            with pytest.raises(mqlog.LogClosedError):
                await producer.send(name, b"late")
            # Sends waiting for their topic's lookup when the producer closes are sent.
            other = unique("topic")
            await log.create_topic(other)
            closing = log.producer()
            waiting = [closing.send(other, b"%d" % n, partition=0) for n in range(3)]
            await closing.close()
            assert [(await sent).offset for sent in waiting] == [0, 1, 2]

    run(main())


def test_errors_come_at_the_call_or_the_await(broker: Broker) -> None:
    async def main() -> None:
        async with mqlog.aio.open(broker.url) as log:
            name = unique("topic")
            await log.create_topic(name)
            producer = log.producer()
            # The first send to a topic looks its partitions up in the executor:
            # its errors come from the await; later ones at the call.
            with pytest.raises(mqlog.UnknownTopicError):
                await producer.send(unique("missing"), b"a")
            with pytest.raises(mqlog.UnknownTopicError):
                await producer.send_many(unique("missing"), [b"a"])
            with pytest.raises(mqlog.UnknownPartitionError):
                await producer.send(name, b"a", partition=5)
            with pytest.raises(mqlog.UnsupportedError, match="delay_s"):
                await producer.send(name, b"a", delay_s=1.0)
            with pytest.raises(TypeError):
                await producer.send(name, 5)  # type: ignore[arg-type]
            with pytest.raises(mqlog.ConfigError):
                log.consumer(max_poll_records=0)
            with pytest.raises(mqlog.IllegalStateError):
                log.consumer(topics=[name])
            consumer = log.consumer()
            with pytest.raises(mqlog.IllegalStateError):
                await consumer.commit()
            assert await consumer.committed(TopicPartition(name, 0)) is None
            with pytest.raises(mqlog.UnknownPartitionError):
                consumer.assign([TopicPartition(name, 3)])
            with pytest.raises(mqlog.ConfigError):
                await consumer.poll(timeout=-1)
            with pytest.raises(mqlog.UnknownTopicError):
                async with log.consumer(unique("group"), [unique("missing")]):
                    pass
            await consumer.close()
            with pytest.raises(mqlog.LogClosedError):
                await consumer.poll()
        with pytest.raises(mqlog.ConfigError):
            await mqlog.aio.open(f"{broker.url}?no.such.setting=1")

    run(main())


def test_assigned_consumer_polls_seeks_and_reports_positions(broker: Broker) -> None:
    async def main() -> None:
        async with mqlog.aio.open(broker.url) as log:
            name = unique("topic")
            await log.create_topic(name)
            tp = TopicPartition(name, 0)
            producer = log.producer()
            for n in range(5):
                await producer.send(name, b"%d" % n, timestamp=1_700_000_000_000 + 10 * n)
            consumer = log.consumer(auto_offset_reset="earliest")
            consumer.assign([tp])
            assert consumer.assignment() == {tp}
            assert await consumer.position(tp) == 0
            got = await poll_until(consumer, 5)
            assert [m.value for m in got] == [b"0", b"1", b"2", b"3", b"4"]
            assert all(isinstance(m, mqlog.Message) for m in got)
            assert await consumer.position(tp) == 5
            assert await consumer.lag() == {tp: 0}
            assert await consumer.poll(timeout=0.2) == []
            consumer.seek(tp, 3)
            assert [m.offset for m in await poll_until(consumer, 2)] == [3, 4]
            await consumer.seek_to_beginning()
            assert await consumer.position(tp) == 0
            columns = await consumer.poll_columns(timeout=30, max_records=2)
            assert [list(c.offsets) for c in columns] == [[0, 1]]
            await consumer.seek_to_end(tp)
            assert await consumer.position(tp) == 5
            consumer.pause()
            assert consumer.paused() == {tp}
            await producer.send(name, b"5")
            assert await consumer.poll(timeout=0.5) == []
            consumer.resume()
            assert consumer.paused() == set()
            assert [m.value for m in await poll_until(consumer, 1)] == [b"5"]

    run(main())


def test_seek_to_time(broker: Broker) -> None:
    skip_on_tansu(broker, TANSU_TIME)

    async def main() -> None:
        async with mqlog.aio.open(broker.url) as log:
            name = unique("topic")
            await log.create_topic(name)
            tp = TopicPartition(name, 0)
            producer = log.producer()
            for n in range(4):
                await producer.send(name, b"%d" % n, timestamp=1_700_000_000_000 + 10 * n)
            consumer = log.consumer()
            consumer.assign([tp])
            await consumer.seek_to_time(1_700_000_000_015)
            assert await consumer.position(tp) == 2

    run(main())


def test_group_member_async_for_commit_and_resume(broker: Broker) -> None:
    async def main() -> None:
        async with mqlog.aio.open(broker.url) as log:
            name = unique("topic")
            group = unique("group")
            await log.create_topic(name, 2)
            producer = log.producer()
            for n in range(6):  # one record per batch (see TANSU_END_OFFSET)
                await producer.send(name, b"%d" % n, partition=n % 2)
            assigned: list[set[TopicPartition]] = []
            seen: list[mqlog.Message] = []
            async with log.consumer(group, **GROUP_OPTIONS) as consumer:
                await consumer.subscribe([name], on_assigned=assigned.append)
                async for message in consumer:
                    seen.append(message)
                    if len(seen) == 6:
                        break
                assert sorted(m.value for m in seen) == [b"%d" % n for n in range(6)]
                assert set().union(*assigned) == {TopicPartition(name, 0),
                                                  TopicPartition(name, 1)}
                ends = {tp: offset for tp, offset in (await consumer.commit()).items()}
                assert sum(ends.values()) == 6
                for tp, offset in ends.items():
                    assert await consumer.committed(tp) == offset
                assert await consumer.lag() == {tp: 0 for tp in ends}
            await producer.send(name, b"after", partition=0)
            async with log.consumer(group, [name], **GROUP_OPTIONS) as again:
                assert [m.value for m in await poll_until(again, 1)] == [b"after"]

    run(main())


def test_waiting_polls_are_woken_by_sends_without_a_thread_each(broker: Broker) -> None:
    async def main() -> None:
        async with mqlog.aio.open(broker.url) as log:
            names = [unique("topic") for _ in range(WORKERS + 2)]
            consumers = []
            for name in names:
                await log.create_topic(name)
                consumer = log.consumer(auto_offset_reset="earliest")
                consumer.assign([TopicPartition(name, 0)])
                consumers.append(consumer)
            producer = log.producer()
            for name in names:  # every topic known to the producer: sends start at once
                await producer.send(name, b"warm-up")
            for consumer in consumers:
                assert len(await poll_until(consumer, 1)) == 1
            before = set(threading.enumerate())
            # Three waiting polls per consumer, more consumers than the pool has threads.
            polls = [asyncio.ensure_future(consumer.poll(timeout=None, max_records=1))
                     for consumer in consumers for _ in range(3)]
            await started(*polls)
            await asyncio.sleep(0.5)
            assert not any(poll.done() for poll in polls)
            assert set(threading.enumerate()) - before - pool_threads() == set()
            assert len(pool_threads()) <= WORKERS
            for name in names:
                for n in range(3):
                    await producer.send(name, b"%d" % n)
            results = await asyncio.gather(*polls)
            assert all(len(result) == 1 for result in results)
            got = sorted((m.topic, m.value) for result in results for m in result)
            assert got == sorted((name, b"%d" % n) for name in names for n in range(3))

    run(main())


def test_cancelled_poll_loses_nothing(broker: Broker) -> None:
    async def main() -> None:
        async with mqlog.aio.open(broker.url) as log:
            name = unique("topic")
            await log.create_topic(name)
            tp = TopicPartition(name, 0)
            consumer = log.consumer(auto_offset_reset="earliest")
            consumer.assign([tp])
            producer = log.producer()
            cancelled = 0
            for round_ in range(20):
                poll = asyncio.ensure_future(consumer.poll(timeout=None))
                await started(poll)
                sent = producer.send(name, b"%d" % round_)
                await asyncio.sleep(0.001 * (round_ % 5))
                poll.cancel()
                await sent
                try:
                    got = await poll  # it may have had the record before the cancel
                except asyncio.CancelledError:
                    got = await poll_until(consumer, 1)
                assert [m.value for m in got] == [b"%d" % round_]
                cancelled += poll.cancelled()
            assert cancelled  # some polls were cancelled while they waited or read
            cancelled_send = producer.send(name, b"kept")
            cancelled_send.cancel()
            assert [m.value for m in await poll_until(consumer, 1)] == [b"kept"]

    run(main())


def test_a_cancelled_send_waiting_for_its_partition_count_is_still_sent(
        broker: Broker) -> None:
    """The first sends to a topic wait for its partition count (deferred);
    cancelling one does not take it back, and flush waits for them all."""

    async def main() -> None:
        async with mqlog.aio.open(broker.url) as log:
            name = unique("topic")
            await log.create_topic(name)
            producer = log.producer()
            assert not producer.producer.knows_partitions(name)  # type: ignore[attr-defined]
            cancelled_send = producer.send(name, b"kept")
            cancelled_send.cancel()
            later = producer.send(name, b"later")
            assert await producer.flush(timeout=0) == 2  # both still wait for the count
            assert await producer.flush() == 0
            assert (await later).offset == 1
            consumer = log.consumer(auto_offset_reset="earliest")
            consumer.assign([TopicPartition(name, 0)])
            assert [m.value for m in await poll_until(consumer, 2)] == [b"kept", b"later"]

    run(main())


def test_closing_the_log_ends_waiting_consumers(broker: Broker) -> None:
    async def main() -> None:
        log = await mqlog.aio.open(broker.url)
        name = unique("topic")
        await log.create_topic(name)
        consumer = log.consumer()
        consumer.assign([TopicPartition(name, 0)])
        seen: list[Any] = []

        async def iterate() -> None:
            async for message in consumer:
                seen.append(message)

        iterating = asyncio.ensure_future(iterate())
        waiting = asyncio.ensure_future(consumer.poll(timeout=None))
        await started(iterating, waiting)
        await log.close()
        await iterating  # async for ends
        with pytest.raises(mqlog.LogClosedError):
            await waiting
        assert seen == []
        with pytest.raises(mqlog.LogClosedError):
            log.producer()

    run(main())
