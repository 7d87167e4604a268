"""Idempotent appends: the last batches each producer wrote to a partition.

Owner: the partition, under its append lock (every read and write of the table
happens with the lock held, in whatever process appends).

An idempotent append carries a :class:`ProducerBatch`: producer id, epoch and
the sequence number of its first record; its records take the sequence numbers
``base_sequence .. base_sequence + count - 1`` (modulo 2**31, as Kafka's do).
The rules are Kafka's (``ProducerStateEntry``/``ProducerAppendInfo``):

* the last ``BATCHES_RETAINED`` (5) appends of each producer are remembered
  with their sequence range, first offset and end offset;
* an append whose epoch and sequence range equal one of them is a duplicate: it
  is not written again and returns that append's first offset;
* otherwise, in the producer's epoch its first sequence must follow the last
  remembered one (ProducerSequenceError, Kafka's OutOfOrderSequence); an older
  epoch is fenced (InvalidProducerEpochError); a newer epoch starts over at
  sequence 0 and forgets the older epoch's appends;
* a producer with nothing remembered (new, or forgotten: see below) may start
  at any sequence.

A remembered append is only taken for a duplicate if it is in the log: its
end offset is at or below the published end and the batch at its first offset
has the checksum recorded for it (``landed``, given by the partition). The
entry is written after the append's bytes and before its end is published, so
a process killed in between leaves an entry for an append that recovery may
cut and later appends may overwrite; the checksum tells.

The file ``producers`` holds ``SLOTS`` records of ``RECORD_SIZE`` bytes
(layout in docs/format.md), written with ``pwrite`` into blocks reserved with
``posix_fallocate`` when the file is opened, so a full disk fails the open
before anything is written instead of raising SIGBUS later. A producer's record
lives in one of the ``PROBE_SLOTS`` slots from ``producer_id % (SLOTS -
PROBE_SLOTS + 1)``; a new producer takes a free one, else the one whose newest
append is the oldest (that producer is forgotten). Each record has its own
checksum: a torn or damaged record reads as free, which forgets one producer.
The file is not rebuilt from the log (batches do not carry producer ids); the
partition flushes it before a durable (``always``) idempotent append returns,
and ``make_durable`` flushes it with the records it makes durable. A record
never straddles a disk sector, so a power loss leaves each either as last
written or as last flushed, never torn: what was flushed with acknowledged
appends survives later unflushed rewrites. A power loss can still forget the
appends in flight (not written back while their data was): a retry of one is
then written again.
"""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Callable
from itertools import chain
from typing import NamedTuple

import xxhash

from mqlog.errors import InvalidProducerEpochError, ProducerSequenceError
from mqlog.logstore._files import fdatasync_file
from mqlog.logstore._space import storage_failed
from mqlog.logstore.layout import PRODUCERS_FILE

#: Appends remembered per producer and partition (Kafka's NUM_BATCHES_TO_RETAIN:
#: a Kafka producer has at most 5 requests in flight per partition).
BATCHES_RETAINED = 5
#: Sequence numbers are Kafka's int32, from 0; the one after SEQUENCE_MAX is 0.
SEQUENCE_MAX = 2**31 - 1
#: Epochs are Kafka's int16.
EPOCH_MAX = 2**15 - 1
#: Producers remembered per partition: 256 records of 256 bytes is 64 KiB per
#: partition that has seen an idempotent append.
SLOTS = 256
#: Slots a producer's record may take, from its home slot on.
PROBE_SLOTS = 16
#: 2: records of 256 bytes, so that none straddles a 512-byte sector (version 1
#: had 192-byte records; its records read as free, forgetting their producers).
RECORD_VERSION = 2

_HEAD = struct.Struct("<QBBHIq")  # checksum, version, batch count, epoch, 0, producer id
_BATCH = struct.Struct("<IIqqQ")  # first/last sequence, first/end offset, checksum
#: A record is rewritten in place: at 256 bytes, aligned, it lies within one
#: disk sector (512 bytes or more), which a drive writes whole or not at all on
#: power loss, so a torn write never destroys a record made durable before.
RECORD_SIZE = 256
FILE_SIZE = SLOTS * RECORD_SIZE
#: A whole record but its checksum, by the number of appends it holds: the head's
#: other fields, the appends, zeros.
_BODIES = [struct.Struct("<BBHIq" + "IIqqQ" * count
                         + f"{RECORD_SIZE - _HEAD.size - count * _BATCH.size}x")
           for count in range(BATCHES_RETAINED + 1)]
assert 8 + _BODIES[0].size == RECORD_SIZE
#: Where a record's producer id is.
_ID_AT = 16
_checksum = xxhash.xxh3_64_intdigest


@dataclasses.dataclass(frozen=True)
class ProducerBatch:
    """Makes an append idempotent: who sends it and the sequence of its first record.

    ``producer_id``: 0 .. 2**63 - 1; ``epoch``: 0 .. 32767 (a new epoch fences the
    older ones and starts again at sequence 0); ``base_sequence``: 0 .. 2**31 - 1,
    the sequence number of the append's first record (the others follow, wrapping
    from 2**31 - 1 to 0). These are a Kafka producer's producer id, producer epoch
    and base sequence.
    """

    producer_id: int
    epoch: int
    base_sequence: int

    def __post_init__(self) -> None:
        if not (type(self.producer_id) is int and type(self.epoch) is int
                and type(self.base_sequence) is int and 0 <= self.producer_id < 2**63
                and 0 <= self.epoch <= EPOCH_MAX and 0 <= self.base_sequence <= SEQUENCE_MAX):
            for name, high in (("producer_id", 2**63 - 1), ("epoch", EPOCH_MAX),
                               ("base_sequence", SEQUENCE_MAX)):
                value = getattr(self, name)
                if not isinstance(value, int) or isinstance(value, bool):
                    raise TypeError(f"{name} must be an int, not {type(value).__name__}")
                if not 0 <= value <= high:
                    raise ValueError(f"{name} must be in 0..{high}, not {value}")

    def last_sequence(self, count: int) -> int:
        """The sequence number of the last of ``count`` records."""
        return (self.base_sequence + count - 1) % (SEQUENCE_MAX + 1)


class AppendMetadata(NamedTuple):
    """One remembered append: its sequence range, offsets and the checksum of its
    first batch on disk."""

    first_sequence: int
    last_sequence: int
    first_offset: int
    end_offset: int
    checksum: int


class ProducerEntry(NamedTuple):
    """What a partition remembers of one producer: its epoch and last appends,
    oldest first."""

    producer_id: int
    epoch: int
    appends: tuple[AppendMetadata, ...]

    def with_append(self, append: AppendMetadata) -> ProducerEntry:
        return ProducerEntry(self.producer_id, self.epoch,
                             (*self.appends, append)[-BATCHES_RETAINED:])


class Admission(NamedTuple):
    """The verdict on an idempotent append: a duplicate (``duplicate`` is the first
    offset it was written at) or new (``entry`` is the producer's entry to extend
    with it, written into ``slot``)."""

    duplicate: int | None
    entry: ProducerEntry
    slot: int


def admit(entry: ProducerEntry | None, batch: ProducerBatch, count: int,
          landed: Callable[[AppendMetadata], bool]) -> tuple[int | None, ProducerEntry]:
    """Apply the rules of this module to an append of ``count`` records: return
    (first offset of the duplicate, entry) or (None, the entry to extend).

    ``landed(append)`` says whether a remembered append is in the log. Raises
    InvalidProducerEpochError or ProducerSequenceError (nothing is written then).
    """
    pid = batch.producer_id
    if entry is None:
        return None, ProducerEntry(pid, batch.epoch, ())
    if batch.epoch < entry.epoch:
        raise InvalidProducerEpochError(
            f"producer {pid} sent epoch {batch.epoch}, older than its epoch {entry.epoch}: "
            f"it was fenced by a newer instance")
    if batch.epoch > entry.epoch:
        if batch.base_sequence != 0:
            raise ProducerSequenceError(
                f"producer {pid} started epoch {batch.epoch} at sequence "
                f"{batch.base_sequence}; a new epoch starts at 0")
        return None, ProducerEntry(pid, batch.epoch, ())
    appends = entry.appends
    if appends and batch.base_sequence == (appends[-1].last_sequence + 1) % (SEQUENCE_MAX + 1):
        # The next one: the common case. It cannot also repeat a remembered append
        # (5 appends never span the 2**31 sequence numbers).
        return None, entry
    last = batch.last_sequence(count)
    # The newest appends not in the log were never published (their process
    # died first) or were cut by recovery after a crash or power loss (the
    # table's page went to disk, their records did not): as if never written.
    # Recovery cuts a suffix of the log, so these are a suffix of the appends.
    while appends and not landed(appends[-1]):
        appends = appends[:-1]
    for append in appends:
        if append.first_sequence == batch.base_sequence and append.last_sequence == last:
            if landed(append):
                return append.first_offset, entry
            raise ProducerSequenceError(
                f"producer {pid} retried sequences {batch.base_sequence}..{last}, which "
                f"are no longer in the log, after later ones were written")
    if appends:
        expected = (appends[-1].last_sequence + 1) % (SEQUENCE_MAX + 1)
        if batch.base_sequence != expected:
            raise ProducerSequenceError(
                f"producer {pid} (epoch {batch.epoch}) sent sequence {batch.base_sequence}; "
                f"expected {expected} (after {appends[-1].last_sequence})")
    return None, ProducerEntry(pid, entry.epoch, appends)


class ProducerTable:
    """The ``producers`` file of one partition, open in this process."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, PRODUCERS_FILE)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        #: A record was written since the last :meth:`sync` began.
        self.unsynced = False
        try:
            os.posix_fallocate(self._fd, 0, FILE_SIZE)  # idempotent; reserves the blocks
        except BaseException:
            os.close(self._fd)
            raise
        #: slot -> (its record's bytes, their entry), as last read here.
        self._decoded: dict[int, tuple[bytes, ProducerEntry | None]] = {}

    def lookup(self, batch: ProducerBatch, count: int,
               landed: Callable[[AppendMetadata], bool]) -> Admission:
        """The verdict of :func:`admit` on an append, with the slot to record it in."""
        home = batch.producer_id % (SLOTS - PROBE_SLOTS + 1)
        window = os.pread(self._fd, PROBE_SLOTS * RECORD_SIZE, home * RECORD_SIZE)
        if len(window) < PROBE_SLOTS * RECORD_SIZE:  # a file of an older layout
            window = window.ljust(PROBE_SLOTS * RECORD_SIZE, b"\0")
        # Fast path: the first place the id appears is its record's id field.
        found = window.find(batch.producer_id.to_bytes(8, "little"), _ID_AT)
        slot = (found - _ID_AT) // RECORD_SIZE
        entry = None
        if found >= 0 and (found - _ID_AT) % RECORD_SIZE == 0:
            entry = self._decode(window, slot, home)
        if entry is None:
            entry, slot = self._place(window, home, batch.producer_id)
        duplicate, entry = admit(entry, batch, count, landed)
        return Admission(duplicate, entry, home + slot)

    def _place(self, window: bytes, home: int, producer_id: int
               ) -> tuple[ProducerEntry | None, int]:
        """(the producer's entry, its slot) from a look at every record of the
        window; for a producer without one, a free slot, else the slot of the
        producer that appended least recently (which is forgotten)."""
        records = [self._decode(window, i, home) for i in range(PROBE_SLOTS)]
        for i, record in enumerate(records):
            if record is not None and record.producer_id == producer_id:
                return record, i
        if None in records:
            return None, records.index(None)
        return None, min(range(PROBE_SLOTS), key=lambda i: _newest_end(records[i]))

    def _decode(self, window: bytes, index: int, home: int) -> ProducerEntry | None:
        """The entry of record ``index`` of the window at ``home``; None for a free,
        torn or damaged slot. Decoded records are kept per slot while their bytes
        stay the same."""
        raw = window[index * RECORD_SIZE : (index + 1) * RECORD_SIZE]
        cached = self._decoded.get(home + index)
        if cached is not None and cached[0] == raw:
            return cached[1]
        entry = _decode(raw)
        self._decoded[home + index] = (raw, entry)
        return entry

    def record(self, admission: Admission, append: AppendMetadata) -> None:
        """Write the admitted entry extended by ``append`` (before the append is
        published)."""
        entry = admission.entry.with_append(append)
        count = len(entry.appends)
        body = _BODIES[count].pack(RECORD_VERSION, count, entry.epoch, 0, entry.producer_id,
                                   *chain.from_iterable(entry.appends))
        data = _checksum(body).to_bytes(8, "little") + body
        self._decoded.pop(admission.slot, None)
        self.unsynced = True  # before the write: a sync racing it must not miss it
        written = os.pwrite(self._fd, data, admission.slot * RECORD_SIZE)
        if written != RECORD_SIZE:
            raise OSError(f"short write to {self.path}: {written} of {RECORD_SIZE} bytes")
        self._decoded[admission.slot] = (data, entry)

    def sync(self) -> None:
        """fdatasync the table; a failure raises StorageFailedError (the partition
        latches it: see ``Partition``). ``unsynced`` is cleared before the
        fdatasync, so a record written during it is synced by the next one."""
        self.unsynced = False
        try:
            fdatasync_file(self._fd)
        except OSError as error:
            raise storage_failed("fdatasync", self.path, error) from error

    def begin_sync(self) -> int:
        """Clear ``unsynced`` and return the file descriptor for a sync made by
        the caller (``sync_file_system``); a caller whose sync fails sets
        ``unsynced`` again."""
        self.unsynced = False
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _decode(raw: bytes) -> ProducerEntry | None:
    """The entry of a record; None for a free, torn or damaged one."""
    checksum, version, count, epoch, _zero, producer_id = _HEAD.unpack_from(raw)
    if version != RECORD_VERSION or count > BATCHES_RETAINED or checksum != _checksum(
        memoryview(raw)[8:]
    ):
        return None
    appends = tuple(AppendMetadata(*_BATCH.unpack_from(raw, _HEAD.size + i * _BATCH.size))
                    for i in range(count))
    return ProducerEntry(producer_id, epoch, appends)


def _newest_end(entry: ProducerEntry | None) -> int:
    return entry.appends[-1].end_offset if entry is not None and entry.appends else -1
