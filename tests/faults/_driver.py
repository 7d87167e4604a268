"""A seeded simulation of a log's life under power losses and crashes.

:class:`Simulation` runs random steps -- appends to ``always``, ``interval`` and
``none`` topics (tiny segments: many rolls), explicit flushes, the interval
flusher's ticks, retention, compaction, deleting records (``delete_records``),
consumer-group commits, queue receive/ack, creating and deleting a topic, the
kernel writing everything back
-- interleaved with power losses and kill -9 crashes (see ``_simdisk``), after
each of which it reopens the log and checks it against a model of what was
acknowledged:

* ``lost``: a record acknowledged durably is missing, or reads back different.
  Durably means: appended to an ``always`` topic (the append returned), covered
  by a completed ``Log.flush()``, or appended to an ``interval`` topic more than
  ``flush_ms`` (plus one tick) before the power loss, as docs/concepts.md
  promises. After a kill -9 every acknowledged record counts.
* ``corrupt_served``: a read returned a record that is not the one written at
  its offset; ``read_failed``: a read of the recovered log raised
  (``read_failed_none`` for a ``durability="none"`` topic);
  ``reopen_failed``: the log could not be opened again; ``topic_lost``: a
  created topic vanished.
* ``offsets_reused_state_slot`` / ``offsets_reused_committed``: recovery put
  the end below an offset it must never hand out again: the end in a valid
  slot of the state file found on disk (readers may have seen the offsets
  below it), or an offset a consumer group durably committed. (An end below
  what was acknowledged durably is ``lost``.)
  Offsets of records that were never durable (and recorded nowhere on disk)
  may be handed out again after a power loss: no reader can have kept them
  across it except in memory.
* ``commit_regressed`` / ``ack_regressed``: a group's committed offset went
  below the last commit that returned durably, or a message acked durably was
  delivered again.
* ``start_regressed``: the log start offset went below an offset that a
  ``delete_records`` call that returned moved it to (records deleted came
  back).

The model ignores what it cannot know: records cut by recovery that were never
durable are forgotten (their offsets may come back with other data), and
records of a compacted topic are checked per key (the latest durable record of
each key, or a later one, survives).

``KNOWN_GAPS`` (in the test module) names checks that fail on the current code
for reasons being fixed elsewhere; a check whose gap is listed is counted but
does not fail the run.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import random
from collections.abc import Callable

import mqlog
from mqlog.consumer._config import TopicPartition
from mqlog.logstore import _state
from tests.conftest import FakeClock
from tests.faults._simdisk import SimDisk

#: The interval topic's flush period and the most virtual time one step takes.
FLUSH_MS = 100
STEP_MS_MAX = 30
GROUP = "readers"
QUEUE_GROUP = "workers"
QUEUE_TOPIC = "jobs"
#: Topics of the simulation and their configs (segments of a few batches).
TOPICS = {
    "always": {"durability": "always"},
    "interval": {"durability": "interval", "flush_ms": FLUSH_MS,
                 "retention_bytes": 12_000},
    "none": {"durability": "none"},
    "compacted": {"durability": "always", "cleanup_policy": "compact",
                  "min_cleanable_dirty_ratio": 0.01},
    QUEUE_TOPIC: {"durability": "always"},
    QUEUE_TOPIC + ".dlq": {"durability": "always"},  # created here: see _temp_topic
}
SEGMENT = {"segment_bytes": 4096, "index_interval_bytes": 512}
TEMP_TOPIC = "temp"


@dataclasses.dataclass
class PartitionModel:
    durability: str
    #: offset -> (key, value, virtual ms of the append) of every acknowledged record
    #: that may still be in the log.
    records: dict[int, tuple[bytes | None, bytes, int]] = dataclasses.field(
        default_factory=dict)
    end: int = 0
    #: Every offset below is durable (acknowledged under always, or flushed).
    durable_end: int = 0
    #: The log start offset the last delete_records that returned moved it to.
    deleted_before: int = 0

    def durable_at(self, now_ms: int, keep_page_cache: bool) -> int:
        """The end of what must survive a crash at ``now_ms``."""
        if keep_page_cache:
            return self.end
        durable = self.durable_end
        if self.durability == "interval":
            for offset in range(durable, self.end):
                record = self.records.get(offset)
                if record is not None and record[2] > now_ms - FLUSH_MS - STEP_MS_MAX:
                    break
                durable = offset + 1
        return durable


@dataclasses.dataclass
class Counts:
    power_losses: int = 0
    crashes: int = 0
    enospc: int = 0
    eio: int = 0
    acknowledged: int = 0
    steps: int = 0
    violations: collections.Counter = dataclasses.field(default_factory=collections.Counter)


class Violation(AssertionError):
    pass


class Simulation:
    """One log directory driven for ``steps`` random steps from ``seed``."""

    def __init__(self, path: str, seed: int, known_gaps: dict[str, str],
                 power_loss_share: float = 0.08, crash_share: float = 0.04) -> None:
        self.path = path
        self.seed = seed
        self.rng = random.Random(seed)
        self.known_gaps = known_gaps
        self.power_loss_share = power_loss_share
        self.crash_share = crash_share
        self.clock = FakeClock()
        self.now_ms = 0  # virtual monotonic time of the interval flusher
        self.disk = SimDisk(path, random.Random(self.rng.randrange(2**32)))
        self.counts = Counts()
        self.models: dict[tuple[str, int], PartitionModel] = {}
        self.value_seq = 0
        #: Last committed offset per tp, and the last one that returned durably.
        self.committed: dict[TopicPartition, int] = {}
        self.durably_committed: dict[TopicPartition, int] = {}
        #: Offsets of the queue topic acked (durably: the topic is always).
        self.acked: set[int] = set()
        self.temp_exists = False
        self.log: mqlog.Log | None = None
        self.worker = None
        self.reader = None
        self.log_lines: list[str] = []

    # -- set up and tear down -----------------------------------------------------------

    def __enter__(self) -> Simulation:
        os.makedirs(self.path)
        with mqlog.open(self.path, clock=self.clock) as log:
            for name, config in TOPICS.items():
                log.create_topic(name, 1, **SEGMENT, **config)
                if not name.endswith(".dlq"):  # dead letters are not modelled
                    self.models[(name, 0)] = PartitionModel(config["durability"])
        self._open()
        self.disk.install()
        self.disk.settle()  # the log as created was written back long ago
        return self

    def __exit__(self, *exc_info) -> None:
        self.disk.uninstall()
        if self.log is not None:
            self.log.close()

    def _open(self) -> None:
        self.log = mqlog.open(self.path, clock=self.clock)
        self.log.engine._flusher.start = lambda: None  # ticks are steps (see _tick)
        self.reader = self.log.consumer(group=GROUP)
        self.worker = self.log.queue(QUEUE_GROUP, [QUEUE_TOPIC], ack_timeout_s=1.0)

    # -- checks ---------------------------------------------------------------------------

    def _violation(self, check: str, message: str) -> None:
        self.counts.violations[check] += 1
        line = f"{check}: {message}"
        self.log_lines.append(line)
        if check not in self.known_gaps:
            raise Violation(f"seed {self.seed} step {self.counts.steps}: {line}")

    # -- steps ----------------------------------------------------------------------------

    def run(self, steps: int) -> Counts:
        actions: list[tuple[float, Callable[[], None]]] = [
            (30, self._append), (3, self._flush), (3, self._retention), (3, self._compact),
            (5, self._commit), (6, self._receive_ack), (2, self._temp_topic),
            (2, self._writeback), (2, self._delete_records),
        ]
        weights = [w for w, _ in actions]
        for _ in range(steps):
            self.counts.steps += 1
            draw = self.rng.random()
            if draw < self.power_loss_share:
                self.restart(keep_page_cache=False)
            elif draw < self.power_loss_share + self.crash_share:
                self.restart(keep_page_cache=True)
            else:
                self.rng.choices(actions, weights)[0][1]()
            self._tick()
        self.restart(keep_page_cache=False)
        return self.counts

    def _tick(self) -> None:
        """Virtual time passes; the interval flusher does what its thread would."""
        step = self.rng.randrange(STEP_MS_MAX + 1)
        self.now_ms += step
        self.clock.advance(step)
        self.log.engine._flusher.flush_due(self.now_ms / 1000)
        if self.log.engine._flusher.error is not None:
            raise self.log.engine._flusher.error

    def _append(self) -> None:
        topic = self.rng.choice(["always", "interval", "interval", "none", "compacted",
                                 QUEUE_TOPIC] + ([TEMP_TOPIC] if self.temp_exists else []))
        model = self.models[(topic, 0)]
        count = self.rng.choice([1, 1, 2, 5, 20])
        records = []
        for _ in range(count):
            self.value_seq += 1
            key = (b"k%d" % self.rng.randrange(8)) if topic == "compacted" else None
            value = b"%s:%d:" % (topic.encode(), self.value_seq)
            value += bytes([self.value_seq % 251]) * self.rng.choice([0, 10, 100, 700])
            records.append(mqlog.Record(value, key=key))
        first = self.log.append(topic, 0, records)
        if first != model.end:
            self._violation("offsets_reused", f"{topic}: append got {first}, end was "
                            f"{model.end}")
        for index, record in enumerate(records):
            model.records[first + index] = (record.key, record.value, self.now_ms)
        model.end = first + count
        if model.durability == "always":
            model.durable_end = model.end
        self.counts.acknowledged += count

    def _flush(self) -> None:
        self.log.flush()
        for model in self.models.values():
            if model.durability != "none" or "flush_skips_rolled_segments" not in self.known_gaps:
                model.durable_end = model.end

    def _retention(self) -> None:
        self.log.enforce_retention("interval")

    def _compact(self) -> None:
        self.log.compact("compacted")

    def _delete_records(self) -> None:
        topic = self.rng.choice(["always", "interval", "none"])
        model = self.models[(topic, 0)]
        start = self.log.start_offset(topic, 0)
        before = self.rng.randint(start, model.end) if self.rng.random() < 0.9 else start - 1
        got = self.log.delete_records(topic, 0, before)
        if got != max(before, start):
            self._violation("start_regressed", f"{topic}: delete_records({before}) returned "
                            f"{got}, the start was {start}")
        model.deleted_before = max(model.deleted_before, got)
        for offset in [o for o in model.records if o < got]:
            del model.records[offset]

    def _commit(self) -> None:
        topic = self.rng.choice(["always", "interval", "none"])
        tp = TopicPartition(topic, 0)
        end = self.models[(topic, 0)].end
        offset = max(self.committed.get(tp, 0), self.rng.randrange(end + 1))  # forward only
        self.reader.commit({tp: offset})
        self.committed[tp] = offset
        if topic != "none":  # commits of durability="none" topics are not flushed
            self.durably_committed[tp] = offset

    def _receive_ack(self) -> None:
        messages = self.worker.receive(self.rng.randrange(1, 10), timeout=0)
        model = self.models[(QUEUE_TOPIC, 0)]
        for message in messages:
            self._check_delivery(message, model)
            if self.rng.random() < 0.7:
                message.ack()
                self.acked.add(message.offset)

    def _check_delivery(self, message, model: PartitionModel) -> None:
        if message.offset in self.acked:
            self._violation("ack_regressed", f"offset {message.offset} was acked and "
                            f"was delivered again")
        expected = model.records.get(message.offset)
        if expected is not None and bytes(message.value) != expected[1]:
            self._violation("corrupt_served", f"queue delivered {bytes(message.value)[:20]!r}"
                            f" at {message.offset}, written {expected[1][:20]!r}")

    def _temp_topic(self) -> None:
        if self.temp_exists:
            self.log.delete_topic(TEMP_TOPIC)
            del self.models[(TEMP_TOPIC, 0)]
            self.temp_exists = False
        else:
            durability = self.rng.choice(["always", "interval", "none"])
            self.log.create_topic(TEMP_TOPIC, 1, durability=durability, **SEGMENT)
            self.models[(TEMP_TOPIC, 0)] = PartitionModel(durability)
            self.temp_exists = True
            if "create_topic_not_durable" in self.known_gaps:
                self.disk.settle()

    def _writeback(self) -> None:
        self.disk.settle()
        for model in self.models.values():
            model.durable_end = model.end

    # -- restarts -------------------------------------------------------------------------

    def restart(self, keep_page_cache: bool) -> None:
        """Crash (power loss, or kill -9), reopen, and check the log against the model."""
        must_survive = {key: model.durable_at(self.now_ms, keep_page_cache)
                        for key, model in self.models.items()}
        self.disk.crash(self._close, keep_page_cache)
        if keep_page_cache:
            self.counts.crashes += 1
        else:
            self.counts.power_losses += 1
        slot_ends = {key: self._state_slot_end(*key) for key in self.models}
        try:
            self._open()
        except Exception as error:  # noqa: BLE001 - any error here is the finding
            self._violation("reopen_failed", repr(error))
            raise
        if self.temp_exists and TEMP_TOPIC not in self.log.topics():
            self._violation("topic_lost", "a created topic vanished")
        for key, model in list(self.models.items()):
            try:
                self._check_partition(key, model, must_survive[key], slot_ends[key],
                                      keep_page_cache)
            except mqlog.UnknownTopicError as error:  # its directory is there, not usable
                self._violation("topic_lost", f"{key[0]}: {error}")
                raise
        self._check_commits(keep_page_cache)
        self._check_queue()

    def _close(self) -> None:
        self.log.close()
        self.log = None

    def _state_slot_end(self, topic: str, partition: int) -> int:
        """The end in the newest valid slot of the state file on disk (-1: none)."""
        path = os.path.join(self.path, "topics", topic, str(partition), "state")
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return -1
        if len(data) < _state.FILE_SIZE:
            return -1
        state = _state.decode_state(data)
        return -1 if state is None else state.end_offset

    def _check_partition(self, key: tuple[str, int], model: PartitionModel, must_survive: int,
                         slot_end: int, keep_page_cache: bool) -> None:
        topic, number = key
        start = self.log.start_offset(topic, number)
        end = self.log.end_offset(topic, number)
        committed = self.durably_committed.get(TopicPartition(topic, number), 0)
        if end < must_survive:
            self._violation("lost", f"{topic}: end {end} after recovery, but "
                            f"{must_survive} were durable")
        if end < slot_end:
            self._violation("offsets_reused_state_slot", f"{topic}: end {end} after "
                            f"recovery, the state slot on disk said {slot_end}")
        if end < committed:
            self._violation("offsets_reused_committed", f"{topic}: end {end} after "
                            f"recovery, below the offset {committed} a group committed")
        if start < min(model.deleted_before, end):
            self._violation("start_regressed", f"{topic}: start {start} after recovery, "
                            f"records before {model.deleted_before} were deleted")
        if keep_page_cache and end != model.end:
            self._violation("lost", f"{topic}: end {end} after kill -9, was {model.end}")
        records, complete = self._read_all(topic, number, start, end, model.durability)
        seen = {}
        for record in records:
            expected = model.records.get(record.offset)
            got = (record.key if record.key is None else bytes(record.key), bytes(record.value))
            if expected is None or got != expected[:2]:
                self._violation("corrupt_served", f"{topic}@{record.offset}: read {got!r:.60}"
                                f", written {expected and expected[:2]!r:.60}")
            seen[record.offset] = got
        latest_by_key: dict[bytes | None, int] = {}
        # A read that raised (counted above) returned nothing of its batch: what it
        # hides is not known to be lost.
        for offset in range(max(start, 0), min(must_survive, model.end) if complete else 0):
            expected = model.records.get(offset)
            if expected is None:
                continue
            if topic == "compacted":
                latest_by_key[expected[0]] = offset
            elif offset not in seen:
                self._violation("lost", f"{topic}@{offset} (durable below {must_survive}) "
                                f"is missing; end {end}")
                break
        for record_key, offset in latest_by_key.items():
            if not any(o >= offset and v[0] == record_key for o, v in seen.items()):
                self._violation("lost", f"{topic}: key {record_key!r} lost its record "
                                f"{offset} and every later one")
        for offset in [o for o in model.records if o >= end]:
            del model.records[offset]  # cut by recovery: never durable
        if complete:  # cut below the end: recovery recorded their offsets as a gap
            for offset in [o for o in model.records if start <= o < end and o not in seen]:
                del model.records[offset]
        model.end = model.durable_end = end

    def _read_all(self, topic: str, number: int, start: int, end: int,
                  durability: str) -> tuple[list, bool]:
        """The records from ``start`` to ``end``, and False if a read raised."""
        records = []
        offset = start
        while offset < end:
            try:
                batch = self.log.read(topic, number, offset, max_records=1000)
            except mqlog.MqlogError as error:
                check = "read_failed_none" if durability == "none" else "read_failed"
                self._violation(check, f"{topic}@{offset}: {error!r:.200}")
                return records, False
            if not batch:
                break
            records.extend(batch)
            offset = batch[-1].offset + 1
        return records, True

    def _check_commits(self, keep_page_cache: bool) -> None:
        for tp, offset in list(self.committed.items()):
            got = self.reader.committed(tp)
            want = offset if keep_page_cache else self.durably_committed.get(tp)
            if want is not None and (got is None or got < want):
                self._violation("commit_regressed", f"{tp}: committed {got}, acknowledged "
                                f"{want}")
            if got is None:  # lost with a power loss (it was not durable)
                del self.committed[tp]
                self.durably_committed.pop(tp, None)
            else:  # what survived is on disk now
                self.committed[tp] = self.durably_committed[tp] = got

    def _check_queue(self) -> None:
        """Every message not acked comes back once its lock expires; no acked one does."""
        self.clock.advance(5_000)
        model = self.models[(QUEUE_TOPIC, 0)]
        for message in self.worker.receive(1000, timeout=0):
            self._check_delivery(message, model)
        self.acked &= set(model.records)  # offsets cut by recovery may come back

