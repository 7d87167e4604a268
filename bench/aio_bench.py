"""mqlog.aio against the synchronous API: send and consume throughput, end-to-end latency.

Every figure is measured for both APIs in the same run, on fresh logs with one
topic of one partition (durability="none"), 100-byte values:

- send: ``--records`` records (default 100,000; ``--quick``: 10,000). Sync:
  ``Producer.send`` for each, then ``flush()``. aio: ``await
  AsyncProducer.send`` for each, ``WINDOW`` sends in flight at a time
  (``asyncio.gather`` over windows), so that the sender thread batches as it
  does for the synchronous producer.
- send one by one: a tenth as many records (``ONE_BY_ONE_SHARE``), each
  waited for before the next is sent, so each is appended on its own. Sync:
  ``Producer.send(...).result()``; aio: ``await AsyncProducer.send(...)``.
- asyncio alone: ``WINDOW`` plain futures made with ``loop.create_future``,
  each completed with a ``RecordMetadata`` in one loop callback, gathered --
  repeated for ``--records`` futures. What the aio send figure cannot go
  below: asyncio's own cost of a gathered future, with no record sent.
- consume: the same number of records appended beforehand, read by a member of
  a new group (``auto_offset_reset="earliest"``, ``max_poll_records=500``)
  until all came. Sync: ``Consumer.poll``; aio: ``await AsyncConsumer.poll``
  (a group member's rounds run in the shared executor).
- end-to-end latency: ``--latency-records`` records (default 10,000; quick:
  2,000) sent at ``--rate`` records/s (default 2,000), each value starting
  with ``time.monotonic_ns()`` read just before its send; the consumer (a
  group member that joined and polled once beforehand) reads the clock when
  its poll returns. Sync: a thread sends (``Producer.send``, paced by
  ``time.sleep``) and the consumer polls in another thread. aio: one event
  loop; a task sends (``await send``, paced by ``asyncio.sleep``) and another
  polls. ``same_process`` as said; ``other_process``: the consumer is this
  script with ``--child`` in a process of its own (with the same API).

Figures, per API (``sync_`` / ``aio_``): ``send_records_per_s``,
``send_one_by_one_records_per_s``, ``consume_records_per_s`` (each with
``cpu_us_per_record``: the process's CPU time per record, steadier than wall
time on a shared machine) and ``<placement>_p50_ms`` / ``<placement>_p99_ms``;
and ``asyncio_gather_cpu_us_per_future`` (asyncio alone, above).

``--kafka``: the same comparison over a ``kafka://`` URL instead (metrics
prefixed ``kafka_``, broker ``mqlog serve`` over a fresh directory, topics of
one partition made with durability="none" before it starts; both APIs are
the confluent-kafka clients of ``mqlog.cluster``): send (aio: ``WINDOW`` sends
in flight; sync: ``send`` each, then ``flush``), consume (an assigned consumer
from offset 0, ``max_poll_records=500``, until all came) and end-to-end latency
in one process at ``--rate`` (sync: a sending thread and a polling thread;
aio: a sending task, which does not await each send -- a delivery report
comes only every ``POLLER_INTERVAL_S`` -- and a polling task). Every Kafka
figure carries the 1-minute load average when its run started.
"""

from __future__ import annotations

import asyncio
import functools
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable

import _common
import numpy as np

import mqlog
import mqlog.aio

BENCH = "aio_bench"
APIS = ("sync", "aio")
PLACEMENTS = ("same_process", "other_process")
#: aio sends in flight at once in the send figure.
WINDOW = 1000
#: The one-by-one send figure sends this fraction of ``--records`` (each
#: record is one append: tens of µs).
ONE_BY_ONE_SHARE = 10
MAX_POLL_RECORDS = 500
RATE = 2000
GROUP = "bench"
#: Longest the consumer may take to get ready, or to finish after the last send.
TIMEOUT_S = 60.0
_STAMP = struct.Struct("<Q")


# -- throughput -----------------------------------------------------------------------------


def sync_send(path: str, values: list[bytes]) -> None:
    with mqlog.open(path) as log:
        log.create_topic(_common.TOPIC, durability="none")
        with log.producer() as producer:
            for value in values:
                producer.send(_common.TOPIC, value)
            producer.flush()


async def aio_send(path: str, values: list[bytes]) -> None:
    async with mqlog.aio.open(path) as log:
        await log.create_topic(_common.TOPIC, durability="none")
        producer = log.producer()
        for start in range(0, len(values), WINDOW):
            await asyncio.gather(*(producer.send(_common.TOPIC, value)
                                   for value in values[start:start + WINDOW]))


def sync_send_one_by_one(path: str, values: list[bytes]) -> None:
    with mqlog.open(path) as log:
        log.create_topic(_common.TOPIC, durability="none")
        with log.producer() as producer:
            for value in values:
                producer.send(_common.TOPIC, value).result()


async def aio_send_one_by_one(path: str, values: list[bytes]) -> None:
    async with mqlog.aio.open(path) as log:
        await log.create_topic(_common.TOPIC, durability="none")
        producer = log.producer()
        for value in values:
            await producer.send(_common.TOPIC, value)


async def gathered_futures(count: int) -> None:
    """``count`` futures, ``WINDOW`` at a time: made, completed in one callback
    with a RecordMetadata each, gathered (asyncio alone, nothing sent)."""
    loop = asyncio.get_running_loop()

    def complete(futures: list[asyncio.Future[mqlog.RecordMetadata]]) -> None:
        for offset, future in enumerate(futures):
            future.set_result(mqlog.RecordMetadata(_common.TOPIC, 0, offset, 0))

    for start in range(0, count, WINDOW):
        futures = [loop.create_future() for _ in range(min(WINDOW, count - start))]
        loop.call_soon(complete, futures)
        await asyncio.gather(*futures)


def filled(path: str, values: list[bytes]) -> None:
    with mqlog.open(path) as log:
        log.create_topic(_common.TOPIC, durability="none")
        for start in range(0, len(values), 10_000):
            log.append(_common.TOPIC, 0, values[start:start + 10_000])


def sync_consume(path: str, records: int) -> None:
    with mqlog.open(path) as log:
        consumer = log.consumer(GROUP, [_common.TOPIC], auto_offset_reset="earliest",
                                max_poll_records=MAX_POLL_RECORDS)
        seen = 0
        while seen < records:
            seen += len(consumer.poll(timeout=TIMEOUT_S))


async def aio_consume(path: str, records: int) -> None:
    async with mqlog.aio.open(path) as log:
        consumer = log.consumer(GROUP, [_common.TOPIC], auto_offset_reset="earliest",
                                max_poll_records=MAX_POLL_RECORDS)
        seen = 0
        while seen < records:
            seen += len(await consumer.poll(timeout=TIMEOUT_S))


def measured(run: Callable[[], object], records: int) -> tuple[float, float]:
    """(records per second, CPU µs per record) of ``run()``."""
    cpu = time.process_time()
    with _common.stopwatch() as elapsed:
        run()
    return records / elapsed[0], (time.process_time() - cpu) * 1e6 / records


def throughput(records: int) -> None:
    values = _common.payloads(records)
    for api in APIS:
        with _common.temporary_log_dir(f"{BENCH}-send") as path:
            run = ((lambda: sync_send(path, values)) if api == "sync"
                   else (lambda: asyncio.run(aio_send(path, values))))
            rate, cpu = measured(run, records)
        _common.emit(BENCH, f"{api}_send_records_per_s", rate, "records/s", records=records,
                     cpu_us_per_record=round(cpu, 2), value_bytes=_common.VALUE_BYTES,
                     in_flight=WINDOW if api == "aio" else None)
    one_by_one = values[:max(records // ONE_BY_ONE_SHARE, 1)]
    for api in APIS:
        with _common.temporary_log_dir(f"{BENCH}-send-one") as path:
            run = ((lambda: sync_send_one_by_one(path, one_by_one)) if api == "sync"
                   else (lambda: asyncio.run(aio_send_one_by_one(path, one_by_one))))
            rate, cpu = measured(run, len(one_by_one))
        _common.emit(BENCH, f"{api}_send_one_by_one_records_per_s", rate, "records/s",
                     records=len(one_by_one), cpu_us_per_record=round(cpu, 2),
                     value_bytes=_common.VALUE_BYTES, in_flight=1)
    _, cpu = measured(lambda: asyncio.run(gathered_futures(records)), records)
    _common.emit(BENCH, "asyncio_gather_cpu_us_per_future", cpu, "µs", records=records,
                 in_flight=WINDOW)
    for api in APIS:
        with _common.temporary_log_dir(f"{BENCH}-consume") as path:
            filled(path, values)
            run = ((lambda: sync_consume(path, records)) if api == "sync"
                   else (lambda: asyncio.run(aio_consume(path, records))))
            rate, cpu = measured(run, records)
        _common.emit(BENCH, f"{api}_consume_records_per_s", rate, "records/s",
                     records=records, cpu_us_per_record=round(cpu, 2),
                     max_poll_records=MAX_POLL_RECORDS)


# -- latency: receivers ---------------------------------------------------------------------


def sync_receive(log: mqlog.Log, records: int, on_ready: Callable[[], object]) -> np.ndarray:
    consumer = log.consumer(GROUP, [_common.TOPIC], auto_offset_reset="earliest")
    consumer.poll()
    on_ready()
    latencies = np.empty(records, dtype=np.int64)
    seen = 0
    while seen < records:
        messages = consumer.poll(timeout=0.1)
        now = time.monotonic_ns()
        for message in messages:
            latencies[seen] = now - _STAMP.unpack_from(message.value)[0]
            seen += 1
    consumer.close()
    return latencies


async def aio_receive(log: mqlog.aio.AsyncLog, records: int,
                      on_ready: Callable[[], object]) -> np.ndarray:
    consumer = log.consumer(GROUP, [_common.TOPIC], auto_offset_reset="earliest")
    await consumer.poll()
    on_ready()
    latencies = np.empty(records, dtype=np.int64)
    seen = 0
    while seen < records:
        messages = await consumer.poll(timeout=0.1)
        now = time.monotonic_ns()
        for message in messages:
            latencies[seen] = now - _STAMP.unpack_from(message.value)[0]
            seen += 1
    await consumer.close()
    return latencies


# -- latency: senders and placements ---------------------------------------------------------


async def aio_paced(send: Callable[[], Awaitable[object]], rate: int, records: int) -> None:
    """``await send()`` ``records`` times at ``rate`` per second."""
    interval_ns = 1_000_000_000 / rate
    start = time.monotonic_ns()
    sent = 0
    while sent < records:
        due = min(int((time.monotonic_ns() - start) / interval_ns) + 1, records)
        while sent < due:
            await send()
            sent += 1
        wait_ns = start + sent * interval_ns - time.monotonic_ns()
        if wait_ns > 0:
            await asyncio.sleep(wait_ns / 1e9)


def stamped(padding: bytes) -> bytes:
    return _STAMP.pack(time.monotonic_ns()) + padding


def start_child(api: str, path: str, records: int, output: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", api, path,
                              str(records), output], stdout=subprocess.PIPE, text=True)
    line = child.stdout.readline() if child.stdout else ""
    if line.strip() != "ready":
        child.kill()
        raise RuntimeError(f"the {api} consumer process did not get ready: {line!r}")
    return child


def finish_child(child: subprocess.Popen, output: str) -> np.ndarray:
    try:
        if child.wait(TIMEOUT_S) != 0:
            raise RuntimeError(f"the consumer process exited with {child.returncode}")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout:
            child.stdout.close()
    return np.load(output)


def sync_latencies(placement: str, rate: int, records: int) -> np.ndarray:
    padding = os.urandom(_common.VALUE_BYTES - _STAMP.size)
    with _common.temporary_log_dir(BENCH) as path, mqlog.open(path) as log:
        log.create_topic(_common.TOPIC, durability="none")
        with log.producer() as producer:

            def send() -> None:
                producer.send(_common.TOPIC, stamped(padding))

            if placement == "other_process":
                output = os.path.join(path, "latencies.npy")
                child = start_child("sync", path, records, output)
                _common.paced(send, rate, records)
                return finish_child(child, output)
            result: list[np.ndarray] = []
            ready = threading.Event()
            receiver = threading.Thread(
                target=lambda: result.append(sync_receive(log, records, ready.set)))
            receiver.start()
            if not ready.wait(TIMEOUT_S):
                raise RuntimeError("the consumer thread did not get ready")
            _common.paced(send, rate, records)
            receiver.join(TIMEOUT_S)
            return result[0]


async def aio_latencies(placement: str, rate: int, records: int) -> np.ndarray:
    padding = os.urandom(_common.VALUE_BYTES - _STAMP.size)
    with _common.temporary_log_dir(BENCH) as path:
        async with mqlog.aio.open(path) as log:
            await log.create_topic(_common.TOPIC, durability="none")
            producer = log.producer()

            async def send() -> None:
                await producer.send(_common.TOPIC, stamped(padding))

            if placement == "other_process":
                output = os.path.join(path, "latencies.npy")
                child = await asyncio.to_thread(start_child, "aio", path, records, output)
                await aio_paced(send, rate, records)
                return await asyncio.to_thread(finish_child, child, output)
            ready = asyncio.Event()
            receiving = asyncio.create_task(aio_receive(log, records, ready.set))
            async with asyncio.timeout(TIMEOUT_S):
                await ready.wait()
            await aio_paced(send, rate, records)
            async with asyncio.timeout(TIMEOUT_S):
                return await receiving


def child(api: str, path: str, records: int, output: str) -> None:
    """A consumer process: prints ``ready`` once it can receive, saves the latencies."""

    def say_ready() -> None:
        print("ready", flush=True)

    if api == "sync":
        with mqlog.open(path, create=False) as log:
            latencies = sync_receive(log, records, say_ready)
    else:

        async def receive() -> np.ndarray:
            async with mqlog.aio.open(path, create=False) as log:
                return await aio_receive(log, records, say_ready)

        latencies = asyncio.run(receive())
    np.save(output, latencies)


def latency(rate: int, records: int) -> None:
    warmup = rate // 5
    for placement in PLACEMENTS:
        for api in APIS:
            _common.progress(f"{BENCH}: {api} {placement}, {records} records at {rate}/s")
            total = warmup + records
            latencies = (sync_latencies(placement, rate, total) if api == "sync"
                         else asyncio.run(aio_latencies(placement, rate, total)))[warmup:]
            for name, percent in (("p50", 50.0), ("p99", 99.0)):
                _common.emit(BENCH, f"{api}_{placement}_{name}_ms",
                             _common.percentile_us(latencies, percent) / 1000, "ms",
                             records=len(latencies), rate=rate,
                             value_bytes=_common.VALUE_BYTES, durability="none")


# -- over a kafka:// URL ------------------------------------------------------------------------

KAFKA_BENCH = "aio_kafka_bench"
#: Topics made on the broker before it starts (durability "none"), one per run.
KAFKA_TOPICS = [f"{api}-{run}" for api in APIS for run in ("send", "consume", "latency")]


def kafka_sync_send(url: str, topic: str, values: list[bytes]) -> None:
    with mqlog.open(url) as log, log.producer() as producer:
        for value in values:
            producer.send(topic, value)
        producer.flush()


async def kafka_aio_send(url: str, topic: str, values: list[bytes]) -> None:
    async with mqlog.aio.open(url) as log:
        producer = log.producer()
        for start in range(0, len(values), WINDOW):
            await asyncio.gather(*(producer.send(topic, value)
                                   for value in values[start:start + WINDOW]))


def kafka_filled(url: str, topic: str, values: list[bytes]) -> None:
    with mqlog.open(url) as log, log.producer() as producer:
        producer.send_many(topic, values).result(TIMEOUT_S)


def kafka_sync_consume(url: str, topic: str, records: int) -> None:
    with mqlog.open(url) as log:
        consumer = log.consumer(auto_offset_reset="earliest", max_poll_records=MAX_POLL_RECORDS)
        consumer.assign([mqlog.TopicPartition(topic, 0)])
        seen = 0
        while seen < records:
            seen += len(consumer.poll(timeout=TIMEOUT_S))


async def kafka_aio_consume(url: str, topic: str, records: int) -> None:
    async with mqlog.aio.open(url) as log:
        consumer = log.consumer(auto_offset_reset="earliest", max_poll_records=MAX_POLL_RECORDS)
        consumer.assign([mqlog.TopicPartition(topic, 0)])
        seen = 0
        while seen < records:
            seen += len(await consumer.poll(timeout=TIMEOUT_S))


def kafka_sync_latencies(url: str, topic: str, rate: int, records: int) -> np.ndarray:
    padding = os.urandom(_common.VALUE_BYTES - _STAMP.size)
    with mqlog.open(url) as log, log.producer() as producer:
        consumer = log.consumer(auto_offset_reset="earliest")
        consumer.assign([mqlog.TopicPartition(topic, 0)])
        consumer.poll()
        latencies = np.empty(records, dtype=np.int64)

        def receive() -> None:
            seen = 0
            while seen < records:
                messages = consumer.poll(timeout=0.1)
                now = time.monotonic_ns()
                for message in messages:
                    latencies[seen] = now - _STAMP.unpack_from(message.value)[0]
                    seen += 1

        receiver = threading.Thread(target=receive)
        receiver.start()
        _common.paced(lambda: producer.send(topic, stamped(padding)), rate, records)
        receiver.join(TIMEOUT_S)
        if receiver.is_alive():
            raise RuntimeError("the consumer thread did not get every record")
        consumer.close()
        return latencies


async def kafka_aio_latencies(url: str, topic: str, rate: int, records: int) -> np.ndarray:
    padding = os.urandom(_common.VALUE_BYTES - _STAMP.size)
    async with mqlog.aio.open(url) as log:
        producer = log.producer()
        consumer = log.consumer(auto_offset_reset="earliest")
        consumer.assign([mqlog.TopicPartition(topic, 0)])
        await consumer.poll()
        await producer.send(topic, b"\0" * _common.VALUE_BYTES)  # looks the topic up
        latencies = np.empty(records, dtype=np.int64)

        async def receive() -> None:
            seen = -1  # the look-up record first
            while seen < records:
                messages = await consumer.poll(timeout=0.1)
                now = time.monotonic_ns()
                for message in messages:
                    if seen >= 0:
                        latencies[seen] = now - _STAMP.unpack_from(message.value)[0]
                    seen += 1

        receiving = asyncio.create_task(receive())
        sent: list[asyncio.Future[mqlog.RecordMetadata]] = []

        async def send() -> None:
            sent.append(producer.send(topic, stamped(padding)))

        await aio_paced(send, rate, records)
        async with asyncio.timeout(TIMEOUT_S):
            await asyncio.gather(*sent)
            await receiving
        return latencies


def kafka(records: int, rate: int, latency_records: int) -> None:
    """Every figure over a kafka:// URL on ``mqlog serve`` (see the module)."""
    from kafka_bench import brokers
    from kafka_bench.brokers import TopicSpec

    values = _common.payloads(records)
    topics = [TopicSpec(name, 1) for name in KAFKA_TOPICS]
    with brokers.started("mqlog-none", topics) as broker:
        url = f"kafka://{broker.bootstrap}"
        for api in APIS:
            load = round(os.getloadavg()[0], 2)
            topic = f"{api}-send"
            run = (functools.partial(kafka_sync_send, url, topic, values) if api == "sync"
                   else functools.partial(asyncio.run, kafka_aio_send(url, topic, values)))
            rate_, cpu = measured(run, records)
            _common.emit(KAFKA_BENCH, f"kafka_{api}_send_records_per_s", rate_, "records/s",
                         records=records, cpu_us_per_record=round(cpu, 2),
                         value_bytes=_common.VALUE_BYTES,
                         in_flight=WINDOW if api == "aio" else None, load_1m_start=load)
        for api in APIS:
            topic = f"{api}-consume"
            kafka_filled(url, topic, values)
            load = round(os.getloadavg()[0], 2)
            run = (functools.partial(kafka_sync_consume, url, topic, records) if api == "sync"
                   else functools.partial(asyncio.run, kafka_aio_consume(url, topic, records)))
            rate_, cpu = measured(run, records)
            _common.emit(KAFKA_BENCH, f"kafka_{api}_consume_records_per_s", rate_, "records/s",
                         records=records, cpu_us_per_record=round(cpu, 2),
                         max_poll_records=MAX_POLL_RECORDS, load_1m_start=load)
        warmup = rate // 5
        for api in APIS:
            _common.progress(f"{KAFKA_BENCH}: {api}, {latency_records} records at {rate}/s")
            load = round(os.getloadavg()[0], 2)
            topic = f"{api}-latency"
            total = warmup + latency_records
            latencies = (kafka_sync_latencies(url, topic, rate, total) if api == "sync"
                         else asyncio.run(kafka_aio_latencies(url, topic, rate, total)))[warmup:]
            for name, percent in (("p50", 50.0), ("p99", 99.0)):
                _common.emit(KAFKA_BENCH, f"kafka_{api}_same_process_{name}_ms",
                             _common.percentile_us(latencies, percent) / 1000, "ms",
                             records=len(latencies), rate=rate,
                             value_bytes=_common.VALUE_BYTES, load_1m_start=load)


def options(parser: object) -> None:
    parser.add_argument("--kafka", action="store_true",  # type: ignore[attr-defined]
                        help="compare the APIs over a kafka:// URL on mqlog serve instead")
    parser.add_argument("--rate", type=int, default=RATE,  # type: ignore[attr-defined]
                        help=f"records sent per second in the latency runs (default {RATE:,})")
    parser.add_argument("--latency-records", type=int,  # type: ignore[attr-defined]
                        help="records of each latency run (default 10,000; quick: 2,000)")


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return
    args = _common.arguments(__doc__, records=[100_000], quick=[10_000], extra=options)
    latency_records = args.latency_records or (2_000 if args.quick else 10_000)
    if args.kafka:
        _common.progress(f"{KAFKA_BENCH}: {args.records} records")
        kafka(args.records, args.rate, latency_records)
        return
    _common.progress(f"{BENCH}: throughput, {args.records} records")
    throughput(args.records)
    latency(args.rate, latency_records)


if __name__ == "__main__":
    main()
