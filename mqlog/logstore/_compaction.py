"""Log compaction: keep only the latest record of each key in closed segments.

For topics with ``cleanup_policy="compact"`` (such as ``__consumer_offsets``).
Runs on the log's background compactor thread (``_compactor``) after a segment
roll, never on an appending or committing thread, or synchronously when asked
(``Log.compact``). One cleaner per partition at a time, across processes and
threads (an ``flock`` on ``cleaner.lock``, held for the whole run).

A run, in passes:

1. **Map.** Read the records from the checkpoint (``cleaner.json``: the active
   segment's base at the end of the last complete run; nothing below it is
   superseded by anything else below it) up to the published end, and map each
   key's 128-bit digest (xxh3_128) to its latest offset in a
   :class:`KeyOffsetMap` of at most ``KEYS_MAX`` keys. When the map is full
   before the end, the pass covers the offsets up to where it filled and the
   run makes another pass from there: memory stays bounded, and the earliest
   segments may be rewritten once per pass.
2. **Copy.** For each closed segment holding a record the map supersedes (a
   record of the same key at a higher offset) or a tombstone (empty value)
   older than ``delete_retention_ms``, write a cleaned copy
   (``<base>.log.cleaned``, ``.index.cleaned``, ``.timeindex.cleaned``) of the
   surviving records at their offsets (offsets now have gaps) and fsync the
   three files. Records without a key always survive; a segment keeps at least
   its last record, so its batches say it was compacted.
3. **Swap**, under the partition lock: rename ``.log.cleaned`` over ``.log`` (the
   commit point), fsync the directory, rename the two indexes, publish a new
   epoch (readers in every process then reopen the segment); then, the lock
   released, fsync the directory again. A segment deleted by retention
   meanwhile is skipped.
4. After the last pass, write the checkpoint (``_files.atomic_write``).

The active segment is never rewritten. Reading a compacted partition gives, for
every key, the same latest value as reading it uncompacted, whatever the
number of passes: a record is dropped only when a later record of its key
exists, and the latest record of a key is never dropped (but an expired
tombstone).

Crash story -- which files are authoritative when a cleaner dies (kill -9 or
power loss) at any point, and what the next open does (:func:`settle_leftovers`,
run when a process opens the partition and at the start of every run, under
``cleaner.lock``, so never under a live cleaner):

* During the map or the copy, or with ``.log.cleaned`` still there: the
  original segment files are authoritative; the ``.cleaned`` files are
  incomplete or unused and are deleted.
* After the data rename, before the index renames: the cleaned data is
  authoritative; the ``.index.cleaned`` / ``.timeindex.cleaned`` beside it are
  its complete (fsynced) indexes and are renamed into place. Until then a
  reader may see the new data with the old indexes: index entries are checked
  against the batch they point to and a wrong one makes the lookup scan, and
  the old time index is a conservative bound for a subset of its records.
  The directory fsync between the two steps keeps this order after a power
  loss; a power loss before the last fsync may bring back the index
  ``.cleaned`` names, settled the same way.
* After the index renames, before the epoch is published: the files are
  consistent; processes that had the segment open read their old copy (the same
  latest values) until the next epoch.
* Before the checkpoint is written: the next run maps from the older
  checkpoint; compacting compacted segments again changes nothing.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import xxhash

from mqlog.logstore import _batch
from mqlog.logstore import _format as fmt
from mqlog.logstore._files import atomic_write, fsync_directory, fsync_file
from mqlog.logstore._record import Message, Record
from mqlog.logstore.layout import (
    CLEANED_SUFFIX,
    CLEANER_CHECKPOINT_FILE,
    CLEANER_LOCK_FILE,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    SEGMENT_NAME_DIGITS,
    SEGMENT_SUFFIXES,
    TIME_INDEX_SUFFIX,
    segment_name,
)

if TYPE_CHECKING:
    from mqlog.logstore._partition import Partition

#: Most distinct keys one pass maps. A key costs 24 bytes in the map (a 16-byte
#: digest and an 8-byte offset), so about 24 MiB; merging new keys in briefly
#: needs up to three times that. A partition with more keys takes several passes.
KEYS_MAX = 1_000_000
#: Records read or written per step while cleaning.
CHUNK_RECORDS = 10_000
#: Largest record a cleaned copy may hold (the topic's limit applied when it was written).
_NO_LIMIT = 2**62
_DIGEST = np.dtype("S16")


@dataclasses.dataclass(frozen=True)
class CompactionResult:
    #: Closed segments rewritten (once each, however many passes rewrote them).
    segments_rewritten: int
    records_removed: int
    bytes_before: int
    bytes_after: int
    #: Map passes the run made (more than one when the partition has more than
    #: ``KEYS_MAX`` distinct keys since the checkpoint).
    passes: int = 1


class Interrupted(Exception):  # noqa: N818 - a request, not a failure
    """Raised by a ``should_stop`` callback to end a run early (the log is closing)."""


class KeyOffsetMap:
    """Key digest -> latest offset, for at most ``capacity`` distinct keys.

    Keys are added in offset order. Digests are 128-bit (xxh3_128): a collision
    would drop the latest record of a key, and at 128 bits its odds are below
    one in 10^20 even for 10^9 keys. Digests wait in a pending list and are
    merged into a sorted table (numpy) when the two together could pass the
    capacity, so adding costs a sort per ``capacity`` keys, not per chunk.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._digests = np.zeros(0, dtype=_DIGEST)
        self._offsets = np.zeros(0, dtype=np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_count = 0

    def __len__(self) -> int:
        """Distinct keys mapped (merges what is pending)."""
        self._merge()
        return len(self._digests)

    def add(self, digests: list[bytes], offsets: list[int]) -> int:
        """Map ``digests[i]`` to ``offsets[i]`` (ascending); return how many were
        taken: all, or the longest prefix that keeps the map within capacity."""
        count = len(digests)
        if not count:
            return 0
        chunk = np.array(digests, dtype=_DIGEST)
        chunk_offsets = np.array(offsets, dtype=np.int64)
        if len(self._digests) + self._pending_count + count > self.capacity:
            self._merge()
        if len(self._digests) + count > self.capacity:
            known = self._contains(chunk)
            _, first = np.unique(chunk, return_index=True)
            new = np.zeros(count, dtype=bool)
            new[first] = True
            new &= ~known
            room = self.capacity - len(self._digests)
            count = int(np.searchsorted(np.cumsum(new), room, side="right"))
            chunk, chunk_offsets = chunk[:count], chunk_offsets[:count]
        self._pending.append((chunk, chunk_offsets))
        self._pending_count += count
        if count < len(digests):
            self._merge()
        assert len(self._digests) <= self.capacity
        return count

    def latest(self, digests: list[bytes]) -> np.ndarray:
        """The mapped offset of each digest, -1 where it is not mapped."""
        self._merge()
        wanted = np.array(digests, dtype=_DIGEST)
        result = np.full(len(wanted), -1, dtype=np.int64)
        if len(self._digests) and len(wanted):
            slots = np.minimum(np.searchsorted(self._digests, wanted), len(self._digests) - 1)
            found = self._digests[slots] == wanted
            result[found] = self._offsets[slots[found]]
        return result

    def _contains(self, digests: np.ndarray) -> np.ndarray:
        if not len(self._digests):
            return np.zeros(len(digests), dtype=bool)
        slots = np.minimum(np.searchsorted(self._digests, digests), len(self._digests) - 1)
        return self._digests[slots] == digests

    def _merge(self) -> None:
        if not self._pending:
            return
        digests = np.concatenate([self._digests, *(d for d, _ in self._pending)])
        offsets = np.concatenate([self._offsets, *(o for _, o in self._pending)])
        self._pending, self._pending_count = [], 0
        order = np.argsort(digests, kind="stable")  # equal digests stay in offset order
        digests, offsets = digests[order], offsets[order]
        last = np.ones(len(digests), dtype=bool)
        last[:-1] = digests[1:] != digests[:-1]
        self._digests, self._offsets = digests[last], offsets[last]


def digest(key: bytes) -> bytes:
    return xxhash.xxh3_128_digest(key)


def compact(partition: Partition, now_ms: int, force: bool = False,
            keys_max: int | None = None,
            should_stop: Callable[[], None] | None = None) -> CompactionResult | None:
    """Compact ``partition`` if it is due (or ``force``); None if skipped (not due,
    another cleaner holds the partition without ``force``, or ``should_stop``
    raised :class:`Interrupted`). ``force`` waits for another cleaner to finish;
    ``keys_max`` defaults to ``KEYS_MAX``."""
    with _cleaner_lock(partition.directory, wait=force) as locked:
        if not locked:
            return None
        _settle_locked(partition.directory)
        try:
            return _compact_locked(partition, now_ms, force, keys_max or KEYS_MAX,
                                   should_stop or (lambda: None))
        except Interrupted:
            return None


@contextmanager
def _cleaner_lock(directory: str, wait: bool) -> Iterator[bool]:
    """Hold ``cleaner.lock``; yields False (not held) if another cleaner has it
    and ``wait`` is false."""
    lock_fd = os.open(os.path.join(directory, CLEANER_LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(lock_fd)


def _compact_locked(partition: Partition, now_ms: int, force: bool, keys_max: int,
                    should_stop: Callable[[], None]) -> CompactionResult | None:
    config = partition.config()
    state = partition.state()
    view = partition.refresh_view(state)
    bases = view.bases.tolist()
    closed = bases[:-1]
    if not closed:
        return None
    sizes = {base: view.segments[base].file_size() for base in closed}
    checkpoint = _read_checkpoint(partition.directory)
    total = sum(sizes.values())
    dirty = sum(size for base, size in sizes.items() if base >= checkpoint)
    if not force and (total == 0 or dirty / total < config.min_cleanable_dirty_ratio):
        return None
    horizon = now_ms - config.delete_retention_ms
    end = state.end_offset
    low = min(max(checkpoint, state.log_start_offset), end)
    rewritten: set[int] = set()
    removed = passes = 0
    while True:
        passes += 1
        latest, high = _map_keys(partition, low, end, keys_max, should_stop)
        for index, base in enumerate(closed):
            if base >= high:
                break
            segment_end = bases[index + 1]
            start = max(base, state.log_start_offset)
            count = _clean_segment(partition, base, start, segment_end, latest, horizon,
                                   config.index_interval_bytes, should_stop)
            if count:
                rewritten.add(base)
                removed += count
        if high >= end:
            break
        low = high
    _write_checkpoint(partition.directory, bases[-1])
    after = sum(_size(os.path.join(partition.directory, segment_name(base) + LOG_SUFFIX))
                for base in closed)
    return CompactionResult(len(rewritten), removed, total, after, passes)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:  # deleted by retention meanwhile
        return 0


def _chunks(partition: Partition, start: int, end: int) -> Iterator[list[Message]]:
    """The records from ``start`` to ``end`` (exclusive), in chunks (as Messages:
    their offset, timestamp and headers are set)."""
    offset = start
    while offset < end:
        chunk = partition.read(offset, CHUNK_RECORDS, None, messages=True)
        chunk = [record for record in chunk if record.offset < end]
        if not chunk:
            return
        yield chunk
        offset = chunk[-1].offset + 1


def _map_keys(partition: Partition, start: int, end: int, keys_max: int,
              should_stop: Callable[[], None]) -> tuple[KeyOffsetMap, int]:
    """Map the keys of the records from ``start`` on; returns the map and the
    offset it stops at: ``end``, or the first keyed record it had no room for."""
    latest = KeyOffsetMap(keys_max)
    for chunk in _chunks(partition, start, end):
        should_stop()
        keyed = [record for record in chunk if record.key is not None]
        # (keyed: every key is set)
        taken = latest.add([digest(record.key) for record in keyed],  # type: ignore[arg-type]
                           [record.offset for record in keyed])
        if taken < len(keyed):
            return latest, keyed[taken].offset
    return latest, end


def _keep_flags(chunk: list[Message], latest: KeyOffsetMap, horizon: int) -> list[bool]:
    """Which records of ``chunk`` survive: keyless ones, and keyed ones no mapped
    record supersedes unless they are tombstones older than ``horizon``."""
    keep = [True] * len(chunk)
    keyed = [index for index, record in enumerate(chunk) if record.key is not None]
    if keyed:
        mapped = latest.latest(  # (keyed: the records whose key is set)
            [digest(chunk[index].key) for index in keyed]).tolist()  # type: ignore[arg-type]
        for index, newest in zip(keyed, mapped):
            record = chunk[index]
            keep[index] = newest <= record.offset and (
                len(record.value) > 0 or record.timestamp >= horizon)
    return keep


def _clean_segment(partition: Partition, base: int, start: int, end: int,
                   latest: KeyOffsetMap, horizon: int, index_interval_bytes: int,
                   should_stop: Callable[[], None]) -> int:
    """Rewrite closed segment ``base`` (offsets ``start`` .. ``end - 1``) without the
    records it no longer needs; return how many it dropped (0: left alone)."""
    total = kept = 0
    last_offset = -1
    for chunk in _chunks(partition, start, end):
        should_stop()
        flags = _keep_flags(chunk, latest, horizon)
        total += len(chunk)
        kept += sum(flags)
        last_offset = chunk[-1].offset
    if kept == total:
        return 0

    def survivors() -> Iterator[Message]:
        for chunk in _chunks(partition, start, end):
            should_stop()
            flags = _keep_flags(chunk, latest, horizon)
            for record, keep in zip(chunk, flags):
                if keep or (not kept and record.offset == last_offset):
                    yield record

    stem = os.path.join(partition.directory, segment_name(base))
    try:
        _write_cleaned(stem, base, end, survivors(), index_interval_bytes)
        swapped = _swap_in(partition, base)
    except BaseException:
        _remove_cleaned(stem)  # unused: the original stays authoritative
        raise
    return total - max(kept, 1) if swapped else 0


def _runs(records: Iterable[Message]) -> Iterator[list[Message]]:
    """Maximal runs of consecutive offsets (a batch's offsets are consecutive)."""
    run: list[Message] = []
    for record in records:
        if run and (record.offset != run[-1].offset + 1 or len(run) >= CHUNK_RECORDS):
            yield run
            run = []
        run.append(record)
    if run:
        yield run


def _write_cleaned(stem: str, base: int, end: int, records: Iterable[Message],
                   index_interval_bytes: int) -> None:
    """Write and fsync the cleaned copy of segment ``base`` (data and both indexes)."""
    position = 0
    last_indexed = 0
    max_timestamp = fmt.NO_TIMESTAMP
    offset_entries: list[tuple[int, int]] = []
    time_entries: list[tuple[int, int, int]] = []
    with open(stem + LOG_SUFFIX + CLEANED_SUFFIX, "wb") as data:
        for run in _runs(records):
            copies = [Record(r.value, r.key, r.headers or None, r.timestamp) for r in run]
            next_offset = run[0].offset
            for batch in _batch.encode(copies, 0, _NO_LIMIT):
                batch.attributes |= fmt.ATTR_COMPACTED  # gaps before it are legitimate
                relative = next_offset - base
                if position - last_indexed >= index_interval_bytes:
                    offset_entries.append((relative, position))
                    time_entries.append(fmt.time_entry(max_timestamp, relative))
                    last_indexed = position
                for part in batch.frame(next_offset):
                    data.write(part)
                position += batch.length
                next_offset += batch.count
                max_timestamp = max(max_timestamp, batch.max_timestamp)
        data.flush()
        fsync_file(data.fileno())
    time_entries.append(fmt.time_entry(max_timestamp, end - base))  # its newest timestamp
    _write_synced(stem + INDEX_SUFFIX + CLEANED_SUFFIX,
                  np.array(offset_entries, dtype=fmt.OFFSET_INDEX_DTYPE).tobytes())
    _write_synced(stem + TIME_INDEX_SUFFIX + CLEANED_SUFFIX,
                  np.array(time_entries, dtype=fmt.TIME_INDEX_DTYPE).tobytes())


def _write_synced(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        fsync_file(handle.fileno())


def _swap_in(partition: Partition, base: int) -> bool:
    """Replace segment ``base`` by its cleaned copy (see the crash story in the
    module docstring); False, discarding the copy, if retention deleted the
    segment meanwhile."""
    stem = os.path.join(partition.directory, segment_name(base))
    with partition.locked() as state:
        if state is None or base >= state.active_base_offset or not os.path.exists(
            stem + LOG_SUFFIX
        ) or base < state.log_start_offset:
            _remove_cleaned(stem)
            return False
        os.replace(stem + LOG_SUFFIX + CLEANED_SUFFIX, stem + LOG_SUFFIX)  # the commit point
        fsync_directory(partition.directory)
        for suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX):
            os.replace(stem + suffix + CLEANED_SUFFIX, stem + suffix)
        partition.publish(state.replace(epoch=state.epoch + 1), state)
    fsync_directory(partition.directory)  # appenders need not wait for this one
    return True


def _remove_cleaned(stem: str) -> None:
    for suffix in SEGMENT_SUFFIXES:
        try:
            os.unlink(stem + suffix + CLEANED_SUFFIX)
        except FileNotFoundError:
            pass


def settle_leftovers(directory: str, names: Iterable[str] | None = None) -> None:
    """Settle what a cleaner that died left in partition ``directory`` (see the
    crash story above): delete copies it never swapped in, finish a swap it
    began. ``names``: the directory's entries, if the caller listed them.

    Does nothing while a live cleaner holds ``cleaner.lock`` (its files are in
    use; it settles leftovers itself when it starts its next run)."""
    if names is None:
        names = os.listdir(directory)
    if not any(name.endswith(CLEANED_SUFFIX) for name in names):
        return
    with _cleaner_lock(directory, wait=False) as locked:
        if locked:
            _settle_locked(directory)


def _settle_locked(directory: str) -> None:
    """:func:`settle_leftovers` with ``cleaner.lock`` held."""
    stems = {name[:SEGMENT_NAME_DIGITS] for name in os.listdir(directory)
             if name.endswith(CLEANED_SUFFIX) and name[:SEGMENT_NAME_DIGITS].isdigit()}
    for stem_name in sorted(stems):
        stem = os.path.join(directory, stem_name)
        if os.path.exists(stem + LOG_SUFFIX + CLEANED_SUFFIX) or not os.path.exists(
                stem + LOG_SUFFIX):
            _remove_cleaned(stem)  # never swapped in, or its segment is gone
            continue
        for suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX):  # the data was swapped in
            try:
                os.replace(stem + suffix + CLEANED_SUFFIX, stem + suffix)
            except FileNotFoundError:
                pass
    if stems:
        fsync_directory(directory)


def _read_checkpoint(directory: str) -> int:
    try:
        with open(os.path.join(directory, CLEANER_CHECKPOINT_FILE)) as handle:
            return int(json.load(handle)["cleaned_upto"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return 0


def _write_checkpoint(directory: str, offset: int) -> None:
    atomic_write(os.path.join(directory, CLEANER_CHECKPOINT_FILE),
                 json.dumps({"cleaned_upto": offset}).encode())
