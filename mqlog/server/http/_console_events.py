"""The console's live streams: snapshots of the whole log, and the tail of a topic.

:class:`SnapshotHub` owns the sampling of one app: one task samples the log
every ``interval_s`` (in a worker thread, off the event loop) while at least
one stream watches, and hands each snapshot to every stream; with nobody
watching it does not run at all. :func:`tail_records` follows one topic for
one stream, looking for new records every :data:`TAIL_POLL_S`.

Every stream ends when the app's ``stopping`` event is set (the listener is
shutting down), so an open console never holds the graceful shutdown up, and
when its client goes away (Starlette cancels it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pydantic

from mqlog.errors import CorruptRecordError, MqlogError, OffsetOutOfRangeError
from mqlog.log import Log
from mqlog.logstore import Record
from mqlog.monitor import TopicSample
from mqlog.server.http._console_snapshot import take_snapshot
from mqlog.server.http._payloads import PayloadOut, payload_out

_log = logging.getLogger("mqlog.server.http")

#: Time between two snapshots (and so the span of the rates).
SNAPSHOT_INTERVAL_S = 1.0
#: Time between two looks for new records of a tailed topic.
TAIL_POLL_S = 0.25
#: Time between two looks for partitions added to a tailed topic.
TAIL_WATCH_S = 2.0
#: Records a tail sends when it starts (the newest, over every partition).
TAIL_BACKLOG = 20
#: Records read per partition and per look; a tail further behind than this skips
#: ahead to the newest (it is for eyes, not for consuming).
TAIL_BATCH = 200
#: Bytes of a key, a value or a header value sent to the page; longer ones are cut,
#: and the record says so.
TAIL_FIELD_SHOWN_MAX = 4096
#: Longest silence on a stream: a comment line keeps idle connections alive.
KEEPALIVE_S = 15.0


def sse(event: str, data: str) -> str:
    """One server-sent event (``data``: one line of JSON)."""
    return f"event: {event}\ndata: {data}\n\n"


async def pause(seconds: float, stopping: asyncio.Event) -> bool:
    """Sleep ``seconds``; False at once if ``stopping`` is set or gets set meanwhile."""
    if stopping.is_set():
        return False
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        return True
    return False


class SnapshotHub:
    """Samples ``log`` for every stream of one app at once (see the module docstring)."""

    def __init__(self, log: Log, stopping: asyncio.Event,
                 interval_s: float = SNAPSHOT_INTERVAL_S) -> None:
        self._log = log
        self._stopping = stopping
        self._interval_s = interval_s
        self._watchers = 0
        self._task: asyncio.Task[None] | None = None
        #: Resolved with the next event (an ``sse`` string), or None when sampling ends.
        self._next: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        #: The last event, for a stream that joins while others watch (None when idle).
        self._latest: str | None = None

    @property
    def watchers(self) -> int:
        """The streams watching now."""
        return self._watchers

    @property
    def sampling(self) -> bool:
        """Whether the sampling task runs (only while someone watches)."""
        return self._task is not None and not self._task.done()

    async def events(self) -> AsyncIterator[str]:
        """Snapshot events (and error events) until the app stops: the latest at
        once if others watch already, then each new one."""
        self._watchers += 1
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._sample())
        try:
            if self._latest is not None:
                yield self._latest
            while not self._stopping.is_set():
                event = await asyncio.shield(self._next)
                if event is None:
                    return
                yield event
        finally:
            self._watchers -= 1
            if self._watchers == 0 and self._task is not None:
                self._task.cancel()
                self._task = None
                self._latest = None

    async def _sample(self) -> None:
        """Sample until cancelled (nobody watches) or the app stops (then the
        streams are told: None)."""
        previous: TopicSample | None = None
        while True:
            try:
                previous, snapshot = await asyncio.to_thread(take_snapshot, self._log, previous)
                event = sse("snapshot", snapshot.model_dump_json())
            except MqlogError as error:
                event = sse("failure", _message(str(error)))
            except Exception:
                _log.exception("console: sampling the log failed")
                event = sse("failure", _message("sampling failed (logged by the server)"))
            self._publish(event)
            if not await pause(self._interval_s, self._stopping):
                break
        self._publish(None)

    def _publish(self, event: str | None) -> None:
        current, self._next = self._next, asyncio.get_running_loop().create_future()
        self._latest = event
        current.set_result(event)


def _message(text: str) -> str:
    return _Failure(message=text).model_dump_json()


class _Failure(pydantic.BaseModel):
    message: str


class TailRecord(PayloadOut):
    """A record as the tail sends it (key, value and headers as the log API sends
    them, see ``_payloads``), each cut to TAIL_FIELD_SHOWN_MAX bytes."""

    partition: int
    offset: int
    timestamp: int | None
    #: Whether the key, the value or a header value was cut.
    truncated: bool


class TailBatch(pydantic.BaseModel):
    """One ``records`` event: records in timestamp order, and how many were skipped
    before them because the tail fell behind."""

    records: list[TailRecord]
    skipped: int


def tail_record(partition: int, record: Record) -> TailRecord:
    """``record`` (read from the log) as the page shows it."""
    assert record.offset is not None  # read from the log
    headers = record.headers or {}
    fields = [record.key, record.value, *headers.values()]
    return TailRecord(
        partition=partition, offset=record.offset, timestamp=record.timestamp,
        truncated=any(f is not None and len(f) > TAIL_FIELD_SHOWN_MAX for f in fields),
        **payload_out(None if record.key is None else _cut(record.key), _cut(record.value),
                      {name: _cut(value) for name, value in headers.items()}))


def _cut(data: bytes) -> bytes:
    """The first TAIL_FIELD_SHOWN_MAX bytes of ``data``, less the start of a UTF-8
    character cut in two (so that text stays text)."""
    if len(data) <= TAIL_FIELD_SHOWN_MAX:
        return data
    end = TAIL_FIELD_SHOWN_MAX
    while end > TAIL_FIELD_SHOWN_MAX - 3 and data[end] & 0xC0 == 0x80:  # a continuation byte
        end -= 1
    return bytes(data[:end])


async def tail_records(log: Log, topic: str, stopping: asyncio.Event) -> AsyncIterator[str]:
    """``records`` events of ``topic``: the newest TAIL_BACKLOG records, then each
    record appended after, until the app stops; a ``failure`` event and the end
    if the topic goes away."""
    try:
        positions = {p.partition: max(p.end_offset - TAIL_BACKLOG, p.start_offset)
                     for p in log.describe_topic(topic).partitions}
        first = _read_new(log, topic, positions)
        yield sse("records", TailBatch(records=first.records[-TAIL_BACKLOG:],
                                       skipped=0).model_dump_json())
        watched_s = quiet_s = 0.0
        while await pause(TAIL_POLL_S, stopping):
            watched_s += TAIL_POLL_S
            if watched_s >= TAIL_WATCH_S:
                watched_s = 0.0
                for p in log.describe_topic(topic).partitions:
                    positions.setdefault(p.partition, p.start_offset)
            batch = _read_new(log, topic, positions)
            quiet_s += TAIL_POLL_S
            if batch.records or batch.skipped:
                quiet_s = 0.0
                yield sse("records", batch.model_dump_json())
            elif quiet_s >= KEEPALIVE_S:
                quiet_s = 0.0
                yield ": keep-alive\n\n"
    except MqlogError as error:  # the topic was deleted, the log is closing...
        yield sse("failure", _message(str(error)))


def _read_new(log: Log, topic: str, positions: dict[int, int]) -> TailBatch:
    """The records past ``positions`` (at most TAIL_BATCH per partition, the newest
    when there are more), in timestamp order; moves the positions past them."""
    found: list[TailRecord] = []
    skipped = 0
    for partition, position in positions.items():
        end = log.end_offset(topic, partition)
        if end - position > TAIL_BATCH:
            skipped += end - TAIL_BATCH - position
            position = end - TAIL_BATCH
        records: list[Record] = []
        try:
            records = log.read(topic, partition, position, max_records=TAIL_BATCH)
        except OffsetOutOfRangeError:  # retention went past it, or the end went back
            position = min(max(position, log.start_offset(topic, partition)), end)
        except CorruptRecordError as error:  # skip the damage (mqlog verify tells of it)
            position = end if error.next_offset is None else error.next_offset
        for record in records:
            found.append(tail_record(partition, record))
        if records:
            last = records[-1].offset
            assert last is not None  # read from the log
            position = last + 1
        positions[partition] = position
    found.sort(key=lambda r: (r.timestamp or 0, r.partition, r.offset))
    return TailBatch(records=found, skipped=skipped)
