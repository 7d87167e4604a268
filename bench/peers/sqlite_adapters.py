"""The SQLite-backed Python queues: persist-queue and litequeue, embedded.

Both keep their queue in a SQLite database in WAL mode. Durability is SQLite's
``synchronous`` pragma, set on every connection the queue uses: ``FULL``
fsyncs the write-ahead log at every commit (the fsync class); ``NORMAL`` in WAL
mode fsyncs only at checkpoints, so commits sit in the page cache (the relaxed
class). litequeue sets ``NORMAL`` itself; persist-queue leaves SQLite's
default, ``FULL``, and has no setting for it, so the pragma is issued on its
connection objects.

Values are stored as they are: persist-queue gets a pass-through serializer
(its default pickles every item), litequeue's data column takes the bytes.

persist-queue has no batch put (every ``put`` commits); its stream-like form is
``SQLiteQueue(auto_commit=False)``: ``get`` moves a cursor and ``task_done``
deletes what was read and commits once. ``SQLiteAckQueue`` is its queue with
per-message ``ack``. litequeue's only consume form is ``pop`` + ``done`` per
message; its batch put is its ``transaction()`` context around ``put`` calls.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import time
from collections.abc import Callable

import litequeue
import persistqueue
from persistqueue.exceptions import Empty

from peers import core

#: How long an idle latency consumer sleeps before polling the queue again
#: (neither queue can wake a consumer in another process).
IDLE_POLL_S = 0.001
SYNC_TEXT = {"FULL": "WAL, synchronous=FULL", "NORMAL": "WAL, synchronous=NORMAL"}


class RawBytes:
    """A persist-queue serializer that stores bytes unchanged."""

    @staticmethod
    def dumps(value: bytes) -> bytes:
        return value

    @staticmethod
    def loads(data: bytes) -> bytes:
        return data


def _set_synchronous(connections: list[sqlite3.Connection], synchronous: str) -> None:
    for connection in {id(c): c for c in connections}.values():
        connection.execute(f"PRAGMA synchronous = {synchronous}")


def _pq_connections(queue) -> list[sqlite3.Connection]:
    """persist-queue's connections (it offers no pragma setting of its own)."""
    return [queue._putter, queue._getter]


def _pq_ack_queue(path: str, synchronous: str):
    queue = persistqueue.SQLiteAckQueue(path, serializer=RawBytes)
    _set_synchronous(_pq_connections(queue), synchronous)
    return queue


def _lq_queue(path: str, synchronous: str) -> litequeue.LiteQueue:
    queue = litequeue.LiteQueue(os.path.join(path, "queue.db"))
    _set_synchronous([queue.conn], synchronous)
    return queue


class _SqliteAdapter(core.Adapter):
    """Shared by both queues: a fresh directory per case under the run's root."""

    name = ""

    latency_consume_form = "queue"

    def __init__(self, synchronous: str, root: str) -> None:
        self.synchronous = synchronous
        self.setting = core.Setting(self.name, SYNC_TEXT[synchronous],
                                    core.FSYNC if synchronous == "FULL" else core.RELAXED)
        self._root = root
        self._numbers = itertools.count()
        self._path: str | None = None
        self._queue = None

    def _fresh_dir(self) -> str:
        self._drop()
        self._path = os.path.join(self._root,
                                  f"{self.name}-{self.synchronous}-{next(self._numbers)}")
        os.makedirs(self._path)
        return self._path

    def _drop(self) -> None:
        if self._queue is not None:
            self._queue.close()
            self._queue = None
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)
            self._path = None

    def close(self) -> None:
        self._drop()

    def send_paced(self, rate: int, count: int, value_bytes: int) -> None:
        core.paced(self._queue.put, rate, count, value_bytes)

    def receiver(self) -> dict:
        return {"system": self.name, "path": self._path, "synchronous": self.synchronous}


class PersistQueueAdapter(_SqliteAdapter):
    name = "persist-queue"
    latency_calls = (f"SQLiteAckQueue.put, 1 per call -> get + ack per message (polls every "
                     f"{IDLE_POLL_S * 1000:g} ms when empty)")

    def _fill(self, queue, values: list[bytes], records: int, columns: str) -> None:
        """Write a backlog in one transaction straight into the queue's table
        (persist-queue has no batch put; one put per message would take minutes)."""
        now = time.time()
        rows = ((values[n % len(values)], now) for n in range(records))
        with queue._putter:
            queue._putter.executemany(
                f"INSERT INTO {queue._table_name} {columns}", rows)
        queue.total = records

    def cases(self, values: list[bytes]) -> list[core.Case]:
        count = len(values)

        def prepare_empty(records: int) -> None:
            self._queue = persistqueue.SQLiteQueue(self._fresh_dir(), serializer=RawBytes)
            _set_synchronous(_pq_connections(self._queue), self.synchronous)

        def prepare_cursor_queue(records: int) -> None:
            queue = persistqueue.SQLiteQueue(self._fresh_dir(), serializer=RawBytes,
                                             auto_commit=False)
            _set_synchronous(_pq_connections(queue), self.synchronous)
            self._fill(queue, values, records, "(data, timestamp) VALUES (?, ?)")
            self._queue = queue

        def prepare_ack_queue(records: int) -> None:
            queue = _pq_ack_queue(self._fresh_dir(), self.synchronous)
            self._fill(queue, values, records, "(data, timestamp, status) VALUES (?, ?, 0)")
            self._queue = queue

        def put_single(records: int, deadline: float) -> int:
            put, clock = self._queue.put, time.perf_counter
            for number in range(records):
                if clock() > deadline:
                    return number
                put(values[number % count])
            return records

        def get_task_done(records: int, deadline: float) -> int:
            queue, done = self._queue, 0
            while done < records and time.perf_counter() <= deadline:
                for _ in range(min(core.BATCH, records - done)):
                    queue.get(block=False)
                    done += 1
                queue.task_done()
            return done

        def get_ack(records: int, deadline: float) -> int:
            queue, clock = self._queue, time.perf_counter
            for number in range(records):
                if clock() > deadline:
                    return number
                item = queue.get(block=False, raw=True)
                queue.ack(id=item["pqid"])
            return records

        return [
            core.Case("produce", "single", "SQLiteQueue.put, 1 per call (no batch put)",
                      put_single, prepare_empty),
            core.Case("consume", "stream",
                      f"SQLiteQueue(auto_commit=False).get x {core.BATCH:,} + task_done()",
                      get_task_done, prepare_cursor_queue),
            core.Case("consume", "queue", "SQLiteAckQueue.get + ack, per message", get_ack,
                      prepare_ack_queue,
                      note="acked rows stay in the table; each get skips them from the start"),
        ]

    def start_latency(self) -> None:
        self._queue = _pq_ack_queue(self._fresh_dir(), self.synchronous)


class LitequeueAdapter(_SqliteAdapter):
    name = "litequeue"
    latency_calls = (f"put, 1 per call -> pop + done per message (polls every "
                     f"{IDLE_POLL_S * 1000:g} ms when empty)")
    #: The small backlog that shows how pop's cost depends on the backlog.
    SMALL_BACKLOG = 1000

    def cases(self, values: list[bytes]) -> list[core.Case]:
        count = len(values)

        def prepare_empty(records: int) -> None:
            self._queue = _lq_queue(self._fresh_dir(), self.synchronous)

        def prepare_backlog(records: int) -> None:
            queue = _lq_queue(self._fresh_dir(), self.synchronous)
            for start in range(0, records, core.BATCH):
                with queue.transaction():
                    for number in range(start, min(start + core.BATCH, records)):
                        queue.put(values[number % count])
            self._queue = queue

        def put_single(records: int, deadline: float) -> int:
            put, clock = self._queue.put, time.perf_counter
            for number in range(records):
                if clock() > deadline:
                    return number
                put(values[number % count])
            return records

        def put_transactions(records: int, deadline: float) -> int:
            queue, done = self._queue, 0
            while done < records and time.perf_counter() <= deadline:
                with queue.transaction():
                    for number in range(done, min(done + core.BATCH, records)):
                        queue.put(values[number % count])
                done = min(done + core.BATCH, records)
            return done

        def pop_done(records: int, deadline: float) -> int:
            queue, clock = self._queue, time.perf_counter
            for number in range(records):
                if clock() > deadline:
                    return number
                message = queue.pop()
                queue.done(message.message_id)
            return records

        note = "pop sorts every ready message (status index, then a temp B-tree by id)"
        return [
            core.Case("produce", "single", "put, 1 per call", put_single, prepare_empty),
            core.Case("produce", "batch", f"put x {core.BATCH:,} in one transaction()",
                      put_transactions, prepare_empty),
            core.Case("consume", "queue", "pop + done, per message (only form)", pop_done,
                      prepare_backlog, note=note),
            core.Case("consume", "queue", "pop + done, per message (only form)", pop_done,
                      prepare_backlog, backlog=self.SMALL_BACKLOG, note=note),
        ]

    def start_latency(self) -> None:
        self._queue = _lq_queue(self._fresh_dir(), self.synchronous)


def _poll_loop(take: Callable[[], int | None], count: int, max_s: float) -> list[int]:
    """Call ``take`` (a message's latency, or None when the queue is empty) until
    ``count`` messages arrived; sleep IDLE_POLL_S whenever the queue is empty."""
    latencies: list[int] = []
    deadline = time.monotonic() + max_s
    while len(latencies) < count and time.monotonic() < deadline:
        latency = take()
        if latency is None:
            time.sleep(IDLE_POLL_S)
        else:
            latencies.append(latency)
    return latencies


def receive_persist_queue(spec: dict, count: int, max_s: float,
                          ready: Callable[[], object]) -> list[int]:
    """The latency consumer of persist-queue: SQLiteAckQueue get + ack each."""
    queue = _pq_ack_queue(spec["path"], spec["synchronous"])

    def take() -> int | None:
        try:
            item = queue.get(block=False, raw=True)
        except Empty:
            return None
        latency = core.latency_ns(item["data"], time.monotonic_ns())
        queue.ack(id=item["pqid"])
        return latency

    ready()
    try:
        return _poll_loop(take, count, max_s)
    finally:
        queue.close()


def receive_litequeue(spec: dict, count: int, max_s: float,
                      ready: Callable[[], object]) -> list[int]:
    """The latency consumer of litequeue: pop + done each."""
    queue = _lq_queue(spec["path"], spec["synchronous"])

    def take() -> int | None:
        message = queue.pop()
        if message is None:
            return None
        latency = core.latency_ns(message.data, time.monotonic_ns())
        queue.done(message.message_id)
        return latency

    ready()
    try:
        return _poll_loop(take, count, max_s)
    finally:
        queue.close()
