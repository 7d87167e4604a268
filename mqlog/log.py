"""The Log: what :func:`mqlog.open` returns, a session over one log directory.

It composes the layers below it and adds nothing of its own but their
lifetime: the storage :class:`~mqlog.logstore.Engine` (``log.engine``), and
the clients made through it (producers, consumers, queue workers,
responders), which it closes, in that order, when it closes. Every storage
call is the engine's; every group call is ``mqlog.consumer``'s; the Log only
forwards, checks that a write is allowed, and keeps track of its clients.
"""

from __future__ import annotations

import datetime
import logging
import os
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from mqlog.consumer import (
    Consumer,
    DeadLetter,
    GroupDescription,
    PendingMessage,
    PendingSummary,
    QueueConsumer,
    QueuePartitionDescription,
    ReceivedMessage,
    TopicPartition,
    ack_receipts,
    admin,
    consumed_end_floor,
    dead_letters,
    describe_queue,
    extend_receipt,
    nack_receipt,
    pending,
    pending_summary,
    purge_dead_letters,
    receive_with_receipts,
    redrive,
)
from mqlog.errors import CorruptRecordError
from mqlog.logstore import (
    Engine,
    Message,
    ProducerBatch,
    Record,
    RecordColumns,
    TopicConfig,
    TopicDescription,
)
from mqlog.producer import Producer
from mqlog.request import Handler, Responder, request

_log = logging.getLogger("mqlog")


class _Client(Protocol):
    """What a Log keeps of the clients it made: it closes them."""

    def close(self) -> None: ...


_ClientT = TypeVar("_ClientT", bound=_Client)


class Log:
    """A log directory open in this process. Thread-safe; open one per process
    (after any ``fork``) with :func:`mqlog.open`."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True,
                 read_only: bool = False, apply_retention: bool = True,
                 clock: Callable[[], int] | None = None, **topic_defaults: Any) -> None:
        #: The storage engine of this log: what servers and other layers use.
        self.engine = Engine(path, create=create, read_only=read_only,
                             apply_retention=apply_retention, clock=clock, **topic_defaults)
        self.engine.set_end_floor(consumed_end_floor(self.engine))
        #: Producers and consumers made by this Log: closed (flushed, groups left) with it.
        self._clients: weakref.WeakSet[_Client] = weakref.WeakSet()

    @property
    def path(self) -> str:
        """The log directory (absolute)."""
        return self.engine.path

    @property
    def read_only(self) -> bool:
        """Nothing is ever written through this Log (see :func:`open`)."""
        return self.engine.read_only

    @property
    def apply_retention(self) -> bool:
        """False: segments are deleted for retention only by enforce_retention()."""
        return self.engine.apply_retention

    @property
    def topic_defaults(self) -> TopicConfig:
        """The config topics created through this Log start from."""
        return self.engine.topic_defaults

    # -- topics ----------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int = 1, *, exist_ok: bool = False,
                     **topic_config: Any) -> TopicDescription:
        """Create a topic; raises TopicExistsError if the name is taken. The topic
        appears complete or not at all: a failure (a full disk, too many open
        files, a crash) leaves nothing behind. With ``exist_ok`` (as ``mkdir -p``),
        an existing topic with ``partitions`` partitions and the given config is
        described instead; one that differs raises TopicExistsError naming the
        differences."""
        return self.engine.create_topic(name, partitions, exist_ok=exist_ok, **topic_config)

    def topics(self) -> list[str]:
        """Names of the topics, sorted (internal ``__`` topics included)."""
        return self.engine.topics()

    def describe_topic(self, name: str) -> TopicDescription:
        """Config and per-partition offsets, sizes and segment counts."""
        return self.engine.describe_topic(name)

    def alter_topic(self, name: str, partitions: int | None = None,
                    **topic_config: Any) -> TopicConfig:
        """Change a topic's config and/or raise its partition count (never lower:
        keyed records would move). Validated before anything is written;
        unknown options raise TypeError."""
        return self.engine.alter_topic(name, partitions, **topic_config)

    def delete_topic(self, name: str) -> None:
        """Delete a topic and all its data."""
        self.engine.delete_topic(name)

    # -- records -----------------------------------------------------------------------

    def append(self, topic: str, partition: int, records: Sequence[bytes | Record], *,
               producer: ProducerBatch | None = None) -> int:
        """Append ``records`` (bytes values or Record objects) to one partition.

        Returns the offset of the first record; the others follow densely.
        All or nothing: readers, crashes and failed writes never leave part of
        the records in the log (see "Appends" in docs/concepts.md).
        Returns once the topic's durability is met (``always``: flushed).
        Raises TypeError / RecordTooLargeError before writing anything.
        ``producer`` makes the append idempotent: a retry with the same
        :class:`ProducerBatch` writes nothing and returns the first try's offset.
        """
        return self.engine.append(topic, partition, records, producer=producer)

    def read(self, topic: str, partition: int, offset: int, max_records: int = 500,
             max_bytes: int | None = None) -> list[Record]:
        """Records from ``offset`` on: at most ``max_records``, and stopping before
        ``max_bytes`` (keys + headers + values) is passed but never returning
        nothing when a record is there. Reading at the end offset returns [];
        outside [start_offset, end_offset] raises OffsetOutOfRangeError.

        A batch damaged on disk ends the read before it; a read that starts in
        one raises CorruptRecordError, whose ``next_offset`` is where reading
        can go on (``damaged_start``..``damaged_end`` cannot be read)."""
        return self.engine.read(topic, partition, offset, max_records, max_bytes)

    def read_columns(self, topic: str, partition: int, offset: int,
                     max_records: int = 10_000, max_bytes: int | None = None) -> RecordColumns:
        """The records :meth:`read` would return, as columns: numpy arrays of
        offsets, timestamps and payload positions over one bytes object, with no
        Python object per record (see :class:`~mqlog.RecordColumns`). For bulk
        work -- replays, exports, numpy -- several times faster than ``read``."""
        return self.engine.read_columns(topic, partition, offset, max_records, max_bytes)

    def iter(self, topic: str, partition: int, start: int = 0, end: int | None = None,
             on_corrupt: str | Callable[[CorruptRecordError], None] = "raise",
             ) -> Iterator[Record]:
        """Iterate records from ``start`` up to ``end`` (exclusive); with ``end=None``,
        up to the end offset as it is when the iterator reaches it.

        At damaged records (see CorruptRecordError): ``on_corrupt="raise"``
        raises once the records before them were yielded; ``"skip"`` logs a
        warning and goes on from the next readable offset; a callable is
        called with the error, then the damage is skipped."""
        return self.engine.iter(topic, partition, start, end, on_corrupt)

    def offset_for_time(self, topic: str, partition: int, ts_ms: int) -> int:
        """The first offset whose timestamp is >= ``ts_ms`` (the end offset if none);
        TypeError unless ``ts_ms`` is an integer."""
        return self.engine.offset_for_time(topic, partition, ts_ms)

    def start_offset(self, topic: str, partition: int) -> int:
        """The first offset still in the log (retention moves it forward)."""
        return self.engine.start_offset(topic, partition)

    def end_offset(self, topic: str, partition: int) -> int:
        """The offset the next appended record will get."""
        return self.engine.end_offset(topic, partition)

    def append_counter(self) -> int:
        """A number that changes whenever any process appends to this log; pass it
        to :meth:`wait_for_append` after finding nothing new to read."""
        return self.engine.append_counter()

    def wait_for_append(self, seen: int, timeout_s: float) -> None:
        """Sleep until an append (by any thread or process) wakes this thread, or
        ``timeout_s`` passes; may return early, so callers re-check what they
        wait for (see :meth:`Engine.wait_for_append`)."""
        self.engine.wait_for_append(seen, timeout_s)

    def now_ms(self) -> int:
        """The log's clock: ms since the epoch (the ``clock`` given to open)."""
        return self.engine.now_ms()

    def delete_records(self, topic: str, partition: int, before_offset: int) -> int:
        """Move the partition's log start offset up to ``before_offset`` (as
        kafka-delete-records and Redis ``XTRIM MINID`` do) and return the start
        offset now: whole segments below it are deleted, the records of the rest
        below it are no longer read, found or counted. Durable before it returns.
        At or below the start it changes nothing; beyond the end offset it raises
        OffsetOutOfRangeError; on a read-only Log, ReadOnlyError."""
        return self.engine.delete_records(topic, partition, before_offset)

    def enforce_retention(self, topic: str | None = None) -> int:
        """Apply retention now to one topic or all; return segments deleted."""
        return self.engine.enforce_retention(topic)

    def compact(self, topic: str | None = None) -> int:
        """Compact now the ``compact`` topics (one, or all), on this thread (waiting
        for a cleaner already at work on a partition); return segments rewritten.
        Compaction otherwise runs by itself, on a background thread, after rolls."""
        return self.engine.compact(topic)

    def flush(self) -> None:
        """fdatasync everything this process appended."""
        self.engine.flush()

    # -- clients -----------------------------------------------------------------------

    def producer(self, **config: Any) -> Producer:
        """A new :class:`~mqlog.producer.Producer` sending to this log (see
        ``ProducerConfig`` for the settings)."""
        self.engine.check_writable("create a producer")
        return self._track(Producer(self.engine, **config))

    def consumer(self, group: str | None = None, topics: Iterable[str] | str = (),
                 **config: Any) -> Consumer:
        """A new :class:`~mqlog.consumer.Consumer`; with ``group`` (and ``topics``,
        or a later ``subscribe``) a member of that consumer group. Settings: see
        ``ConsumerConfig``; an unknown one raises TypeError."""
        if group is not None:  # members write their files and commit offsets
            self.engine.check_writable(f"join consumer group {group!r}")
        self.engine.check_open()
        return self._track(Consumer(self.engine, group, topics, **config))

    def queue(self, group: str, topics: Iterable[str] | str, *, ack_timeout_s: float = 30.0,
              max_deliveries: int = 5, dead_letter_topic: str | None = None,
              backoff: Callable[[int], float] | None = None) -> QueueConsumer:
        """A worker of queue group ``group`` over ``topics``: per-message ack/nack,
        redelivery after ``ack_timeout_s`` or a nack, dead letters after
        ``max_deliveries`` (default topic ``<topic>.dlq``). Any number of workers,
        threads or processes, share the same partitions."""
        self.engine.check_writable(f"start a worker of queue group {group!r}")
        return self._track(QueueConsumer(self.engine, group, topics,
                                         ack_timeout_s=ack_timeout_s,
                                         max_deliveries=max_deliveries,
                                         dead_letter_topic=dead_letter_topic, backoff=backoff))

    def request(self, topic: str, value: bytes | str, timeout: float, **options: Any
                ) -> Message:
        """Send a request to ``topic`` and wait for the reply of a
        :class:`~mqlog.request.Responder` (see ``mqlog.request``)."""
        return request(self.engine, topic, value, timeout, **options)

    def responder(self, topic: str, handler: Handler, group: str = "responders",
                  **queue_options: Any) -> Responder:
        """A :class:`~mqlog.request.Responder` answering requests on ``topic``."""
        self.engine.check_writable("start a responder")
        return self._track(Responder(self.engine, topic, handler, group, **queue_options))

    def _track(self, client: _ClientT) -> _ClientT:
        """Remember ``client`` so that :meth:`close` closes it; returns it."""
        self._clients.add(client)
        return client

    # -- consumer groups and queue groups (see mqlog.consumer) ---------------------------

    def list_groups(self) -> list[str]:
        """Consumer groups with members or committed offsets, and queue groups."""
        return admin.list_groups(self.engine)

    def describe_group(self, group: str) -> GroupDescription:
        """A group's kind, state, generation, members and per-partition committed
        offset, end offset, lag and age of the oldest unconsumed record; for a queue
        group also ready, in flight, delayed, expired and dead-lettered counts."""
        return admin.describe_group(self.engine, group)

    def reset_offsets(self, group: str, topic: str, partitions: Iterable[int] | None = None, *,
                      to: str | int | datetime.datetime | None = None,
                      shift_by: int | None = None,
                      by_duration: datetime.timedelta | None = None, dry_run: bool = False,
                      ) -> dict[TopicPartition, tuple[int | None, int]]:
        """Move a group's committed offsets, or a queue group's position (refused
        while it has live members); returns ``{TopicPartition: (current, new)}``. See
        :func:`mqlog.consumer.admin.reset_offsets`."""
        if not dry_run:
            self.engine.check_writable(f"reset the offsets of group {group!r}")
        return admin.reset_offsets(self.engine, group, topic, partitions, to=to,
                                   shift_by=shift_by, by_duration=by_duration, dry_run=dry_run)

    def alter_offsets(self, group: str, offsets: Mapping[TopicPartition, int], *,
                      dry_run: bool = False) -> dict[TopicPartition, tuple[int | None, int]]:
        """Set a group's committed offsets (``{TopicPartition: offset}``, any topics)
        in one commit; an offset beyond the end raises OffsetOutOfRangeError. See
        :func:`mqlog.consumer.admin.alter_offsets`."""
        if not dry_run:
            self.engine.check_writable(f"reset the offsets of group {group!r}")
        return admin.alter_offsets(self.engine, group, offsets, dry_run=dry_run)

    def delete_offsets(self, group: str, topics: str | Iterable[str] | None = None,
                       partitions: Iterable[int] | None = None, *,
                       dry_run: bool = False) -> list[TopicPartition]:
        """Forget a group's committed offsets for a topic or several (all topics:
        None); returns the partitions forgotten. See
        :func:`mqlog.consumer.admin.delete_offsets`."""
        if not dry_run:
            self.engine.check_writable(f"delete offsets of group {group!r}")
        return admin.delete_offsets(self.engine, group, topics, partitions, dry_run=dry_run)

    def delete_group(self, group: str) -> None:
        """Forget a group and its committed offsets or queue state (refused while it
        has members)."""
        self.engine.check_writable(f"delete group {group!r}")
        admin.delete_group(self.engine, group)

    def describe_queue(self, group: str) -> list[QueuePartitionDescription]:
        """Depth of a queue group per partition: position, end offset, lag, and
        ready / in flight / delayed / expired / dead-lettered / corrupt counts
        (see ``QueuePartitionDescription``)."""
        return describe_queue(self.engine, group)

    def pending(self, group: str, *, topic: str | None = None, partition: int | None = None,
                member_id: int | None = None, min_idle_s: float = 0.0,
                limit: int | None = None) -> list[PendingMessage]:
        """A queue group's pending messages (handed out, not finished) with their
        owner, idle time and delivery count, filtered; Redis' XPENDING with a range.
        See :func:`mqlog.consumer.pending`."""
        return pending(self.engine, group, topic=topic, partition=partition,
                       member_id=member_id, min_idle_s=min_idle_s, limit=limit)

    def pending_summary(self, group: str) -> PendingSummary:
        """How many messages of a queue group are pending, per partition and per
        owner; Redis' XPENDING without a range."""
        return pending_summary(self.engine, group)

    def receive_with_receipts(self, group: str, topics: Iterable[str] | str, *,
                              max_messages: int = 1, visibility_s: float = 30.0,
                              timeout: float | None = 0.0,
                              **queue_options: Any) -> list[ReceivedMessage]:
        """Messages of a queue group, each held ``visibility_s`` seconds by a
        receipt handle any process may ack with :meth:`ack_receipts`. See
        :func:`mqlog.consumer.receive_with_receipts`."""
        return receive_with_receipts(self.engine, group, topics, max_messages=max_messages,
                                     visibility_s=visibility_s, timeout=timeout,
                                     **queue_options)

    def ack_receipts(self, group: str, receipts: Iterable[str]) -> None:
        """Ack messages by receipt handle; DeliveryLostError names stale handles."""
        self.engine.check_writable(f"ack messages of queue group {group!r}")
        ack_receipts(self.engine, group, receipts)

    def nack_receipt(self, group: str, receipt: str, *, delay_s: float | None = None,
                     reason: str | None = None) -> None:
        """Release a message by receipt handle: deliverable again after ``delay_s``
        (None: the default back-off), ``reason`` kept for its dead letter;
        DeliveryLostError for a stale handle. See :func:`mqlog.consumer.nack_receipt`."""
        self.engine.check_writable(f"nack a message of queue group {group!r}")
        nack_receipt(self.engine, group, receipt, delay_s=delay_s, reason=reason)

    def extend_receipt(self, group: str, receipt: str, visibility_s: float) -> None:
        """Hold a message by receipt handle ``visibility_s`` seconds from now;
        DeliveryLostError for a stale handle. See :func:`mqlog.consumer.extend_receipt`."""
        self.engine.check_writable(f"extend a message of queue group {group!r}")
        extend_receipt(self.engine, group, receipt, visibility_s)

    def redrive(self, dlq_topic: str, offsets: Iterable[int] | None = None,
                where: Callable[[Record], bool] | None = None, *, to: str | None = None,
                partition: int | None = None, reason: str | None = None,
                dry_run: bool = False) -> int:
        """Move pending dead letters back to where they came from (or to topic
        ``to``) and mark them redriven; returns how many moved (would move, with
        ``dry_run``). See :func:`mqlog.consumer.redrive`."""
        if not dry_run:
            self.engine.check_writable(f"redrive {dlq_topic!r}")
        return redrive(self.engine, dlq_topic, offsets, where, to=to, partition=partition,
                       reason=reason, dry_run=dry_run)

    def dead_letters(self, dlq_topic: str, *, partition: int | None = None,
                     offsets: Iterable[int] | None = None, reason: str | None = None,
                     pending_only: bool = False) -> list[DeadLetter]:
        """The letters of a dead-letter topic with their origin and state (pending,
        redriven, purged). See :func:`mqlog.consumer.dead_letters`."""
        return dead_letters(self.engine, dlq_topic, partition=partition, offsets=offsets,
                            reason=reason, pending_only=pending_only)

    def purge_dead_letters(self, dlq_topic: str, offsets: Iterable[int] | None = None, *,
                           partition: int | None = None, reason: str | None = None,
                           dry_run: bool = False) -> int:
        """Mark pending dead letters purged: never to be redriven. Returns how many.
        See :func:`mqlog.consumer.purge_dead_letters`."""
        if not dry_run:
            self.engine.check_writable(f"purge {dlq_topic!r}")
        return purge_dead_letters(self.engine, dlq_topic, offsets, partition=partition,
                                  reason=reason, dry_run=dry_run)

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the producers (flushing them) and consumers (leaving their groups)
        made by this Log, then the engine: flush what interval durability still
        owes, release files; idempotent."""
        if self.engine.closed:
            return
        for client in list(self._clients):
            try:
                client.close()
            except Exception:  # e.g. a consumer's on_revoked failed: keep closing
                _log.exception("closing %r failed", client)
        self.engine.close()

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        read_only = " read-only" if self.read_only else ""
        closed = " closed" if self.engine.closed else ""
        return f"<mqlog.Log {self.path!r}{read_only}{closed}>"


def open(path: str | os.PathLike[str], **config: Any) -> Log:  # noqa: A001 - mirrors builtins.open
    """Open (creating if missing) the log directory at ``path``.

    ``config``: defaults for topics created through this Log (any TopicConfig
    field), ``create=False`` to refuse a missing directory, ``clock`` (a
    callable returning ms since the epoch) to control time in tests.

    ``read_only=True`` writes nothing at all (read-only media, a log owned by
    another user): no lock file, no recovery on disk (it is worked out in
    memory), no retention; every call that would write raises ReadOnlyError.
    ``apply_retention=False`` leaves retention to other processes (and to an
    explicit ``enforce_retention()``): opening a partition deletes nothing.

    A ``kafka://host:port[,host:port...][?option=value...]`` URL opens a Kafka
    cluster instead: the same API through confluent-kafka (``mqlog[kafka]``);
    see :func:`mqlog.cluster.open_cluster` and docs/cluster.md.
    """
    if isinstance(path, str) and path.lower().startswith("kafka://"):
        from mqlog.cluster import open_cluster

        return open_cluster(path, **config)
    return Log(path, **config)
