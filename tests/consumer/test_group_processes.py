"""Consumer groups across real processes: exclusive partitions, fast takeover, at-least-once.

Members and producers are separate interpreters (``_children``); members are
stopped gracefully (they leave the group) or killed with SIGKILL (the kernel
releases their locks). Every member logs each batch it processed -- partition,
offsets and the ``time.monotonic()`` window in which it held the records --
before committing it, so the parent can check afterwards that no partition was
ever in two members' hands at once and that every record was processed.

``MQLOG_GROUP_SEED`` replays a seed (printed on failure); ``MQLOG_SOAK=1`` runs
the long variant with more kills.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import mqlog
from mqlog.consumer import TopicPartition, offset_store
from tests import _soak_summary

from . import _children
from ._children import Batch, produced_value, read_ledger

SOAK = os.environ.get("MQLOG_SOAK", "") not in ("", "0")
TOPIC = "work"
PARTITIONS = 6
GROUP = "g"
#: Generous bounds for a loaded 2-core machine; the measured figures are printed.
STARTUP_TIMEOUT_S = 30.0
TAKEOVER_BOUND_S = 3.0
DRAIN_TIMEOUT_S = 30.0


def _seed() -> int:
    return int(os.environ.get("MQLOG_GROUP_SEED") or random.SystemRandom().randrange(2**32))


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.01)


class Member:
    """A member process, its reported lines and its ledger."""

    def __init__(self, directory: Path, log_dir: Path, name: str, work_ms: int) -> None:
        self.name = name
        self.ledger = directory / f"{name}.ledger"
        self.stop_file = directory / f"{name}.stop"
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = _children.start(
            "member", log=str(log_dir), group=GROUP, topic=TOPIC, ledger=str(self.ledger),
            stop=str(self.stop_file), work_ms=work_ms, client_id=name)
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.endswith("\n"):  # a line cut by SIGKILL has no newline
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._changed.notify_all()

    def wait_for_line(self, prefix: str, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        with self._changed:
            if not self._changed.wait_for(
                    lambda: any(line.startswith(prefix) for line in self.lines), timeout_s):
                raise AssertionError(f"{self.name} did not print {prefix!r} within "
                                     f"{timeout_s} s: {self.lines} {self.errors()}")

    def owned(self) -> tuple[float, set[int]]:
        """(report time, partitions) of the member's latest ownership report."""
        with self._changed:
            reports = [line.split() for line in self.lines if line.startswith("owns ")]
        if not reports:
            return 0.0, set()
        fields = reports[-1]
        partitions = {int(p) for p in fields[2].split(",")} if len(fields) > 2 else set()
        return float(fields[1]), partitions

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Ask the member to leave; wait until it did."""
        self.stop_file.touch()
        self.process.wait(timeout=STARTUP_TIMEOUT_S)
        self._pump.join(timeout=5)
        assert self.process.returncode == 0, self.errors()
        assert self.lines[-1] == "closed", self.lines[-3:]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._pump.join(timeout=5)

    def errors(self) -> str:
        if self.alive():
            return ""
        return self.process.stderr.read() if not self.process.stderr.closed else ""

    def close_pipes(self) -> None:
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


class Group:
    """The member processes of one test; whatever is left is killed at teardown."""

    def __init__(self, directory: Path, log_dir: Path, work_ms: int) -> None:
        self.directory = directory
        self.log_dir = log_dir
        self.work_ms = work_ms
        self.members: list[Member] = []

    def start(self, count: int = 1, wait: bool = True) -> list[Member]:
        """Start ``count`` members; with ``wait``, return once each has joined."""
        started = [Member(self.directory, self.log_dir, f"m{len(self.members) + i}",
                          self.work_ms) for i in range(count)]
        self.members += started
        for member in started if wait else ():
            member.wait_for_line("ready")
        return started

    def live(self) -> list[Member]:
        return [member for member in self.members if member.alive()]

    def batches(self) -> list[Batch]:
        return [batch for member in self.members for batch in read_ledger(member.ledger)]

    def stop_all(self) -> None:
        for member in self.live():
            member.stop_file.touch()
        for member in self.live():
            member.stop()

    def commit_failures(self) -> list[str]:
        return [f"{member.name}: {line}" for member in self.members for line in member.lines
                if line.startswith("commit-failed")]

    def teardown(self) -> None:
        for member in self.members:
            if member.alive():
                member.kill()
            member.close_pipes()


@pytest.fixture
def log(log_dir):
    with mqlog.open(log_dir, durability="none") as opened:
        opened.create_topic(TOPIC, partitions=PARTITIONS)
        yield opened


@pytest.fixture
def group(tmp_path, log_dir, log):
    members = Group(tmp_path, log_dir, work_ms=3)
    yield members
    members.teardown()


class Appender:
    """A parent thread appending one record to every partition each ``period_s``."""

    def __init__(self, log: mqlog.Log, period_s: float) -> None:
        self._log = log
        self._period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            for partition in range(PARTITIONS):
                self._log.append(TOPIC, partition, [b"x"])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def ends(log: mqlog.Log) -> dict[int, int]:
    return {p: log.end_offset(TOPIC, p) for p in range(PARTITIONS)}


def drained(log: mqlog.Log) -> bool:
    """True once the group committed the end offset of every partition."""
    store = offset_store(log.engine)
    for partition, end in ends(log).items():
        value = store.committed(GROUP, TopicPartition(TOPIC, partition))
        if (value.offset if value is not None else 0) != end:
            return False
    return True


def overlaps(batches: list[Batch]) -> list[str]:
    """Pairs of batches of one partition whose windows overlap in different members."""
    found = []
    by_partition: dict[int, list[Batch]] = {}
    for batch in batches:
        by_partition.setdefault(batch.partition, []).append(batch)
    for partition, items in sorted(by_partition.items()):
        last: dict[int, Batch] = {}
        for batch in sorted(items, key=lambda b: b.started):
            for pid, previous in last.items():
                if pid != batch.pid and previous.finished > batch.started:
                    found.append(f"partition {partition}: {previous} overlaps {batch}")
            last[batch.pid] = batch
    return found


def missing(batches: list[Batch], end_offsets: dict[int, int]) -> dict[int, list[int]]:
    """Offsets below each partition's end that no member processed."""
    processed: dict[int, set[int]] = {p: set() for p in end_offsets}
    for batch in batches:
        processed[batch.partition].update(range(batch.first, batch.last + 1))
    return {p: sorted(set(range(end)) - processed[p])[:20]
            for p, end in end_offsets.items() if set(range(end)) - processed[p]}


def duplicates(batches: list[Batch]) -> int:
    total = sum(batch.last - batch.first + 1 for batch in batches)
    distinct = {(b.partition, o) for b in batches for o in range(b.first, b.last + 1)}
    return total - len(distinct)


# -- (1) exclusive partitions ----------------------------------------------------------------------


def test_no_partition_is_consumed_by_two_members_at_once(log, group):
    """Three members share six partitions while one leaves, one is killed and two join;
    no two members ever hold records of one partition at the same time."""
    appender = Appender(log, period_s=0.01)
    try:
        first = group.start(3)
        time.sleep(0.7)
        first[0].stop()
        group.start()
        time.sleep(0.7)
        first[1].kill()
        group.start()
        time.sleep(0.7)
    finally:
        appender.stop()
    wait_until(lambda: drained(log), DRAIN_TIMEOUT_S, "the group to commit every record")
    group.stop_all()
    batches = group.batches()
    assert overlaps(batches) == []
    assert missing(batches, ends(log)) == {}
    assert group.commit_failures() == []
    movers = {p: {b.pid for b in batches if b.partition == p} for p in range(PARTITIONS)}
    assert sum(len(pids) > 1 for pids in movers.values()) >= 3, (
        f"partitions barely moved between members: {movers}")


# -- (2) takeover after SIGKILL --------------------------------------------------------------------


def test_a_killed_members_partitions_are_consumed_by_the_others_within_a_bound(
        log, group, capsys):
    """SIGKILL one of three members: the survivors own its partitions, and process
    records of them, within TAKEOVER_BOUND_S (typically well under a second)."""
    appender = Appender(log, period_s=0.02)
    try:
        members = group.start(3)
        wait_until(lambda: [len(m.owned()[1]) for m in members] == [2, 2, 2], STARTUP_TIMEOUT_S,
                   "three members owning two partitions each")
        victim, survivors = members[0], members[1:]
        lost = victim.owned()[1]
        killed_at = time.monotonic()
        victim.kill()
        wait_until(lambda: set().union(*(m.owned()[1] for m in survivors)) == set(
            range(PARTITIONS)), 10 * TAKEOVER_BOUND_S, "the survivors to own every partition")
        owned_s = max(m.owned()[0] for m in survivors) - killed_at

        def first_batches() -> dict[int, float]:
            firsts: dict[int, float] = {}
            for batch in group.batches():
                if batch.partition in lost and batch.started > killed_at:
                    firsts[batch.partition] = min(firsts.get(batch.partition, 1e18),
                                                  batch.started)
            return firsts

        wait_until(lambda: set(first_batches()) == lost, 10 * TAKEOVER_BOUND_S,
                   "the survivors to process records of the lost partitions")
        consumed_s = max(first_batches().values()) - killed_at
    finally:
        appender.stop()
    with capsys.disabled():
        print(f"\n[takeover after SIGKILL] partitions {sorted(lost)} owned by survivors after "
              f"{owned_s * 1000:.0f} ms, consumed after {consumed_s * 1000:.0f} ms")
    assert consumed_s < TAKEOVER_BOUND_S
    group.stop_all()
    assert overlaps(group.batches()) == []


# -- (3) at-least-once through random kills --------------------------------------------------------


def run_kill_storm(log: mqlog.Log, group: Group, seed: int, kills: int, records: int) -> None:
    """Four members; 2-4 producer processes send ``records`` each while ``kills``
    random members are SIGKILLed at random moments (each replaced at once). Then
    the group drains and every produced record must have been processed."""
    rng = random.Random(seed)
    group.start(4)
    producers = [_children.start("producer", log=str(group.log_dir), topic=TOPIC, producer=n,
                                 count=records, batch=10, pause_ms=25)
                 for n in range(rng.randint(2, 4))]
    try:
        started = time.monotonic()
        for moment in sorted(rng.uniform(0.2, 0.6 * kills) for _ in range(kills)):
            time.sleep(max(0.0, started + moment - time.monotonic()))
            rng.choice(group.live()).kill()  # perhaps one still joining
            group.start(wait=False)
        reports = [producer.communicate(timeout=60) for producer in producers]
    finally:
        for producer in producers:
            if producer.poll() is None:
                producer.kill()
                producer.communicate()
    assert [out for out, _ in reports] == [f"done {records}\n"] * len(producers), reports
    wait_until(lambda: drained(log), DRAIN_TIMEOUT_S, f"the group to drain (seed {seed})")
    group.stop_all()
    values = sorted(bytes(r.value) for p in range(PARTITIONS) for r in log.iter(TOPIC, p))
    assert values == sorted(produced_value(n, s) for n in range(len(producers))
                            for s in range(records)), f"seed {seed}"
    batches = group.batches()
    assert missing(batches, ends(log)) == {}, f"seed {seed}"
    assert overlaps(batches) == [], f"seed {seed}"
    assert group.commit_failures() == [], f"seed {seed}"
    print(f"seed {seed}: {len(producers)} producers, {kills} kills, "
          f"{duplicates(batches)} records processed twice")


def test_every_record_is_processed_at_least_once_while_members_are_killed(log, group):
    run_kill_storm(log, group, _seed(), kills=3, records=600)


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="set MQLOG_SOAK=1 for the long group soak")
def test_at_least_once_soak(log, group):
    totals = _soak_summary.Totals("group_kill_storm")
    run_kill_storm(log, group, _seed(), kills=20, records=8000)
    totals.add(crashes=20)
    totals.write()

