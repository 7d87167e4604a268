"""mqlog, embedded: the log store and its Producer and group Consumer, in the
harness process (the latency receiver in another process opens the same log).

Every case starts from a fresh log directory with one topic of one partition
whose durability is the adapter's setting (``interval`` with ``flush_ms=1000``
for the "fsync every second" class, as Redis' ``appendfsync everysec``).
Committed consumer offsets live in the internal ``__consumer_offsets`` topic,
which is always ``durability="always"``: every ``commit()`` is flushed to disk,
whatever the data topic's setting.
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
from collections.abc import Callable

import mqlog
from mqlog.consumer import TopicPartition
from peers import core

TOPIC = "bench"
GROUP = "bench"
#: The flush period of durability="interval", matched to Redis' appendfsync everysec.
FLUSH_MS = 1000
DURABILITY_TEXT = {
    "none": 'durability="none"',
    "interval": f'durability="interval", flush_ms={FLUSH_MS}',
    "always": 'durability="always"',
}
SYNC_CLASS = {"none": core.RELAXED, "interval": core.RELAXED, "always": core.FSYNC}
#: Auto-commit period of the relaxed latency consumer (commits are always fsynced).
AUTO_COMMIT_MS = 1000


class MqlogAdapter(core.Adapter):
    def __init__(self, durability: str, root: str) -> None:
        self.durability = durability
        self.setting = core.Setting("mqlog", DURABILITY_TEXT[durability], SYNC_CLASS[durability],
                                    reference=durability != "none")
        commit = ("commit() after each poll" if durability == "always"
                  else f"auto-commit every {AUTO_COMMIT_MS} ms")
        self.latency_calls = f"Producer.send, 1 per call -> Consumer.poll, {commit}"
        self._root = root
        self._numbers = itertools.count()
        self._path: str | None = None
        self._log: mqlog.Log | None = None
        self._consumer = None

    # -- fresh logs --------------------------------------------------------------------

    def _fresh_log(self) -> mqlog.Log:
        self._drop()
        self._path = os.path.join(self._root, f"mqlog-{self.durability}-{next(self._numbers)}")
        self._log = mqlog.open(self._path)
        self._log.create_topic(TOPIC, durability=self.durability, flush_ms=FLUSH_MS)
        self._log.end_offset(TOPIC, 0)  # opens the partition outside the timing
        return self._log

    def _drop(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)
            self._path = None

    def close(self) -> None:
        self._drop()

    # -- cases -------------------------------------------------------------------------

    def cases(self, values: list[bytes]) -> list[core.Case]:
        def prepare_empty(records: int) -> None:
            self._fresh_log()

        def prepare_backlog(records: int) -> None:
            log = self._fresh_log()
            for start in range(0, records, core.BATCH):
                log.append(TOPIC, 0, values[: min(core.BATCH, records - start)])
            consumer = log.consumer(GROUP, auto_offset_reset="earliest")
            consumer.subscribe([TOPIC])
            consumer.position(TopicPartition(TOPIC, 0))  # joined, partition open
            self._consumer = consumer

        def append_single(records: int, deadline: float) -> int:
            append, log_values, count = self._log.append, values, len(values)
            clock = time.perf_counter
            for number in range(records):
                if clock() > deadline:
                    return number
                append(TOPIC, 0, [log_values[number % count]])
            return records

        def append_batches(records: int, deadline: float) -> int:
            done = 0
            while done < records and time.perf_counter() <= deadline:
                chunk = min(core.BATCH, records - done)
                self._log.append(TOPIC, 0, values[:chunk])
                done += chunk
            return done

        def send_each(records: int, deadline: float) -> int:
            count, done = len(values), 0
            with self._log.producer() as producer:
                send, clock = producer.send, time.perf_counter
                for number in range(records):
                    if number % core.BATCH == 0 and clock() > deadline:
                        break
                    send(TOPIC, values[number % count])
                    done += 1
                unwritten = producer.flush()
            if unwritten:
                raise RuntimeError(f"{unwritten} records not written")
            return done

        def prepare_queue_backlog(records: int) -> None:
            log = self._fresh_log()
            for start in range(0, records, core.BATCH):
                log.append(TOPIC, 0, values[: min(core.BATCH, records - start)])
            self._consumer = log.queue(GROUP, [TOPIC], ack_timeout_s=60)

        def receive_ack(records: int, deadline: float) -> int:
            queue, done = self._consumer, 0
            while done < records and time.perf_counter() <= deadline:
                messages = queue.receive(core.BATCH, timeout=1.0)
                for message in messages:
                    message.ack()
                done += len(messages)
            return done

        def poll_commit(records: int, deadline: float) -> int:
            consumer, done = self._consumer, 0
            while done < records and time.perf_counter() <= deadline:
                done += len(consumer.poll(timeout=1.0, max_records=core.BATCH))
                consumer.commit()
            return done

        return [
            core.Case("produce", "single", "Log.append, 1 record per call", append_single,
                      prepare_empty),
            core.Case("produce", "batch", f"Log.append, {core.BATCH:,} records per call",
                      append_batches, prepare_empty),
            core.Case("produce", "async",
                      "Producer.send, 1 record per call (returns at once; timed to flush())",
                      send_each, prepare_empty),
            core.Case("consume", "stream",
                      f"group Consumer.poll(max_records={core.BATCH:,}) + commit() per poll",
                      poll_commit, prepare_backlog),
            core.Case("consume", "queue",
                      f"QueueConsumer.receive({core.BATCH:,}) + ack() per message",
                      receive_ack, prepare_queue_backlog),
        ]

    # -- latency -----------------------------------------------------------------------

    def start_latency(self) -> None:
        self._fresh_log()

    def send_paced(self, rate: int, count: int, value_bytes: int) -> None:
        with self._log.producer() as producer:
            core.paced(lambda value: producer.send(TOPIC, value), rate, count, value_bytes)
            producer.flush()

    def receiver(self) -> dict:
        return {"system": "mqlog", "path": self._path,
                "commit_each_poll": self.durability == "always"}


def receive(spec: dict, count: int, max_s: float, ready: Callable[[], object]) -> list[int]:
    """The latency consumer (in its own process): the only member of a new group,
    ``poll(timeout=0.1)`` in a loop; commits after each poll for the fsync class,
    else auto-commits every second."""
    latencies: list[int] = []
    with mqlog.open(spec["path"], create=False) as log:
        if spec["commit_each_poll"]:
            consumer = log.consumer(GROUP, auto_offset_reset="earliest")
        else:
            consumer = log.consumer(GROUP, auto_offset_reset="earliest",
                                    enable_auto_commit=True,
                                    auto_commit_interval_ms=AUTO_COMMIT_MS)
        consumer.subscribe([TOPIC])
        consumer.poll()
        ready()
        deadline = time.monotonic() + max_s
        while len(latencies) < count and time.monotonic() < deadline:
            messages = consumer.poll(timeout=0.1)
            now = time.monotonic_ns()
            latencies.extend(core.latency_ns(message.value, now) for message in messages)
            if messages and spec["commit_each_poll"]:
                consumer.commit()
        consumer.close()
    return latencies
