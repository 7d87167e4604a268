"""SIGKILL an appending process at random moments; every acknowledged record survives.

A child process (``_children.run_appender``) appends batches of 1..200 records and
reports each batch on a pipe only after ``append`` returned. The parent kills it with
SIGKILL after a random delay -- sometimes while it is still opening (recovering) the
log -- then reopens the log and checks, byte for byte, that it holds exactly the
records of every earlier generation, every acknowledged batch, and at most the one
batch that was in flight, at dense offsets from 0. The parent then appends and reads
back, and the next generation's child continues on the same directory.

Two further scenarios put another live process next to the dying one: two appenders
on one partition with one killed at random, and a process killed at a chosen point
of a segment roll (``_children.run_die_in_roll``) while its peer keeps appending.

``MQLOG_CRASH_ITERATIONS`` raises the number of kills (default 30 for the main test);
``MQLOG_CRASH_SEED`` replays a seed (printed on failure); ``MQLOG_SOAK=1`` enables the
long soak variant.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import os
import queue
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import mqlog
from tests import _soak_summary

from . import _children
from ._children import Expected, as_expected, crash_batch, to_appendable

TOPIC = "crash"
ITERATIONS = int(os.environ.get("MQLOG_CRASH_ITERATIONS", "30"))
SOAK = os.environ.get("MQLOG_SOAK", "") not in ("", "0")
#: Longest wait after the child is ready before killing it.
MAX_KILL_DELAY_S = 0.1
#: Share of kills aimed at the child's open (recovery) instead of its appends.
EARLY_KILL_SHARE = 0.15
#: Generation numbers of the parent's own batches are offset by this.
PARENT_GENERATION = 1000
STARTUP_TIMEOUT_S = 30.0
#: Logs crashed at the same time.
PARALLEL_LOGS = 2


def _seed() -> int:
    return int(os.environ.get("MQLOG_CRASH_SEED") or random.SystemRandom().randrange(2**32))


@dataclasses.dataclass
class Generation:
    """What one killed child reported before it died."""

    lines: list[str]
    returncode: int
    stderr: str
    #: Set when the child never reached the line the kill was timed on.
    problem: str | None = None

    @property
    def ready_end(self) -> int | None:
        """The end offset the child saw after opening, None if it died before."""
        ready = [line for line in self.lines if line.startswith("ready ")]
        return int(ready[0].split()[1]) if ready else None

    @property
    def acks(self) -> list[tuple[int, int, int]]:
        """(batch number, first offset, record count) of each acknowledged batch."""
        return [tuple(map(int, line.split()[1:])) for line in self.lines
                if line.startswith("ack ")]


class Appender:
    """A running appender child whose report lines are collected by a thread."""

    def __init__(self, path: str, seed: int, generation: int) -> None:
        self.process = _children.start("appender", path, TOPIC, seed, generation)
        self.lines: list[str] = []
        self.problem: str | None = None
        self._events: queue.Queue = queue.Queue()
        self._pump = threading.Thread(target=self._collect, daemon=True)
        self._pump.start()

    def _collect(self) -> None:
        """Keep the complete lines (a line cut by the kill has no newline)."""
        for line in self.process.stdout:
            if line.endswith("\n"):
                self.lines.append(line.rstrip("\n"))
                self._events.put(line)
        self._events.put(None)  # end of output: the child is gone

    def wait_for(self, prefix: str) -> None:
        """Wait for the line starting with ``prefix``; note a problem if it never
        comes (the child exited, or hung past STARTUP_TIMEOUT_S)."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while self.problem is None:
            try:
                line = self._events.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                line = None
            if line is None:
                self.problem = f"the child never printed {prefix!r}"
            elif line.startswith(prefix):
                return

    def kill(self) -> Generation:
        """SIGKILL the child; return what it reported."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._pump.join()
        stderr = self.process.stderr.read()
        self.process.stdout.close()
        self.process.stderr.close()
        return Generation(self.lines, self.process.returncode, stderr, self.problem)


def run_and_kill(path: str, seed: int, generation: int, rng: random.Random) -> Generation:
    """Start an appender child, SIGKILL it at a random moment, return its reports."""
    child = Appender(path, seed, generation)
    try:
        if rng.random() < EARLY_KILL_SHARE:
            child.wait_for("opening")
            time.sleep(rng.uniform(0, 0.01))
        else:
            child.wait_for("ready")
            time.sleep(rng.uniform(0, MAX_KILL_DELAY_S))
    finally:
        outcome = child.kill()
    return outcome


def _comparable(records: list[mqlog.Record], expected: list[Expected]) -> list[Expected]:
    """Read-back records as Expected tuples, dropping timestamps where the expected
    record's was assigned by the log's clock."""
    assert len(records) == len(expected)
    out = []
    for record, want in zip(records, expected):
        value, key, headers, timestamp = as_expected(record)
        assert isinstance(timestamp, int)
        out.append((value, key, headers, timestamp if want[3] is not None else None))
    return out


def _read_everything(log: mqlog.Log, end: int) -> list[mqlog.Record]:
    records = log.read(TOPIC, 0, 0, max_records=max(end, 1))
    assert [r.offset for r in records] == list(range(end)), "offsets must be dense from 0"
    return records


def _check_append_after_recovery(log: mqlog.Log, seed: int, generation: int) -> list[Expected]:
    """Append a batch at the recovered end and read it back; return the batch."""
    end = log.end_offset(TOPIC, 0)
    extra = crash_batch(seed, PARENT_GENERATION + generation, 0)
    assert log.append(TOPIC, 0, to_appendable(extra)) == end
    back = log.read(TOPIC, 0, end, max_records=len(extra) + 1)
    assert [r.offset for r in back] == list(range(end, end + len(extra)))
    assert _comparable(back, extra) == extra
    assert log.end_offset(TOPIC, 0) == end + len(extra)
    return extra


def _check_died_by_kill(outcome: Generation) -> None:
    assert outcome.returncode == -signal.SIGKILL, (
        f"the child died by itself ({outcome.returncode}):\n{outcome.stderr}")
    assert outcome.problem is None, f"{outcome.problem}:\n{outcome.stderr}"


def _acknowledged(outcome: Generation, start: int, seed: int,
                  generation: int) -> tuple[list[Expected], list[Expected]]:
    """(records of the acknowledged batches, records of the batch in flight) of a
    sole appender that started at offset ``start``; checks its reports add up."""
    if outcome.ready_end is None:  # killed while opening: it appended nothing
        return [], []
    assert outcome.ready_end == start, "the child's recovery changed the log"
    acked: list[Expected] = []
    for position, (batch_no, first, count) in enumerate(outcome.acks):
        batch = crash_batch(seed, generation, batch_no)
        assert (batch_no, first, count) == (position, start + len(acked), len(batch))
        acked.extend(batch)
    return acked, crash_batch(seed, generation, len(outcome.acks))


def check_generation(path: str, model: list[Expected], seed: int, generation: int,
                     outcome: Generation) -> None:
    """Reopen after the kill; check the log is ``model`` plus the acknowledged batches
    plus at most the batch in flight; append and read back. Extends ``model`` with
    what the log now holds."""
    _check_died_by_kill(outcome)
    acked, in_flight = _acknowledged(outcome, len(model), seed, generation)
    with mqlog.open(path) as log:
        end = log.end_offset(TOPIC, 0)
        durable = len(model) + len(acked)
        assert end in (durable, durable + len(in_flight)), (
            f"end offset {end}: acknowledged up to {durable}, "
            f"in flight {len(in_flight)} more")
        assert log.start_offset(TOPIC, 0) == 0
        model.extend(acked + (in_flight if end > durable else []))
        assert _comparable(_read_everything(log, end), model) == model
        model.extend(_check_append_after_recovery(log, seed, generation))


def _create_topic(path: str, topic_config: dict) -> None:
    with mqlog.open(path) as log:
        log.create_topic(TOPIC, **topic_config)


def crash_log(path: str, seed: int, generations: int, topic_config: dict) -> dict[str, int]:
    """One fresh log whose appender is killed ``generations`` times in a row;
    returns counts for the soak summary."""
    rng = random.Random(seed)
    _create_topic(path, topic_config)
    model: list[Expected] = []
    for generation in range(generations):
        outcome = run_and_kill(path, seed, generation, rng)
        try:
            check_generation(path, model, seed, generation, outcome)
        except BaseException as exc:
            print(f"log {path} generation={generation} acks={len(outcome.acks)} "
                  f"ready={outcome.ready_end} stderr={outcome.stderr!r}: {exc!r:.300}")
            raise
    shutil.rmtree(path)
    return {"crashes": generations, "acknowledged": len(model)}


def _check_interleaved(records: list[mqlog.Record], acked: dict[int, list[Expected]],
                       in_flight: dict[int, list[Expected]]) -> None:
    """Walk ``records``: each offset starts an acknowledged batch (``acked``, by first
    offset) or else one writer's in-flight batch, each used at most once; every
    acknowledged batch is met."""
    offset = 0
    while offset < len(records):
        batch = acked.pop(offset, None)
        if batch is None:
            value = bytes(records[offset].value)
            writers = [g for g, pending in in_flight.items() if pending[0][0] == value]
            assert writers, f"record {offset} was neither acknowledged nor in flight"
            batch = in_flight.pop(writers[0])
        assert _comparable(records[offset : offset + len(batch)], batch) == batch
        offset += len(batch)
    assert (offset, sorted(acked)) == (len(records), []), "acknowledged batches are missing"


def check_two_appenders(path: str, seed: int, outcomes: list[Generation]) -> None:
    """Each acknowledged batch is at its reported offset; the offsets between them are
    exactly filled by in-flight batches (each writer's next one, at most once)."""
    acked: dict[int, list[Expected]] = {}
    for generation, outcome in enumerate(outcomes):
        _check_died_by_kill(outcome)
        for batch_no, first, count in outcome.acks:
            acked[first] = crash_batch(seed, generation, batch_no)
            assert count == len(acked[first])
    in_flight = {
        generation: crash_batch(seed, generation, len(outcome.acks))
        for generation, outcome in enumerate(outcomes)
    }
    with mqlog.open(path) as log:
        _check_interleaved(_read_everything(log, log.end_offset(TOPIC, 0)), acked, in_flight)
        _check_append_after_recovery(log, seed, 0)


def crash_two_appenders(path: str, seed: int, topic_config: dict) -> dict[str, int]:
    """Two appender processes on one partition; kill one at a random moment, let the
    other go on (it must not trip over the dead one's torn write), then kill it."""
    rng = random.Random(seed)
    _create_topic(path, topic_config)
    children = [Appender(path, seed, generation) for generation in (0, 1)]
    outcomes: list[Generation | None] = [None, None]
    try:
        for child in children:
            child.wait_for("ready")
        first = rng.randrange(2)
        time.sleep(rng.uniform(0, MAX_KILL_DELAY_S))
        outcomes[first] = children[first].kill()
        time.sleep(rng.uniform(0, MAX_KILL_DELAY_S / 2))
    finally:
        outcomes = [outcome or child.kill() for outcome, child in zip(outcomes, children)]
    check_two_appenders(path, seed, outcomes)
    shutil.rmtree(path)
    return {"crashes": 2, "acknowledged": sum(count for outcome in outcomes
                                              for _batch, _first, count in outcome.acks)}


def crash_series(root: Path, iterations: int,
                 scenario: Callable[[str, int], dict[str, int]]) -> None:
    """Run ``scenario(path, seed)`` on ``iterations`` fresh logs, two at a time
    (children mostly wait on startup and on the kill delay, so two overlap well);
    the counts the scenarios return go to the soak summary."""
    seed = _seed()
    totals = _soak_summary.Totals(os.environ.get("PYTEST_CURRENT_TEST", "kill9").split()[0])
    with totals_written(totals), concurrent.futures.ThreadPoolExecutor(
            max_workers=PARALLEL_LOGS) as pool:
        futures = {
            pool.submit(scenario, str(root / f"log{i}"), seed * 10_000 + i): i
            for i in range(iterations)
        }
        for future in concurrent.futures.as_completed(futures):
            try:
                totals.add(**future.result())
            except BaseException:
                print(f"MQLOG_CRASH_SEED={seed} iteration={futures[future]} failed")
                for other in futures:
                    other.cancel()
                raise


@contextlib.contextmanager
def totals_written(totals: _soak_summary.Totals):
    try:
        yield
    finally:
        totals.write()


def _killed(generations: int, **topic_config) -> Callable[[str, int], None]:
    return functools.partial(crash_log, generations=generations, topic_config=topic_config)


def test_kill9_durability_always_keeps_every_acknowledged_record(tmp_path: Path) -> None:
    crash_series(tmp_path, ITERATIONS, _killed(1, durability="always"))


def test_kill9_during_segment_rolls(tmp_path: Path) -> None:
    """Segments of 16 KiB: most batches roll, so kills land inside rolls; three
    generations per log, so recoveries of recovered logs are crashed too."""
    crash_series(tmp_path, max(ITERATIONS // 6, 3),
                 _killed(3, durability="always", segment_bytes=16384, index_interval_bytes=512))


def test_kill9_durability_none_keeps_every_acknowledged_record(tmp_path: Path) -> None:
    """kill -9 keeps the page cache: durability="none" loses nothing acknowledged."""
    crash_series(tmp_path, max(ITERATIONS // 6, 3),
                 _killed(2, durability="none", segment_bytes=65536))


def test_kill9_one_of_two_concurrent_appenders(tmp_path: Path) -> None:
    scenario = functools.partial(crash_two_appenders, topic_config={
        "durability": "always", "segment_bytes": 65536, "index_interval_bytes": 1024})
    crash_series(tmp_path, max(ITERATIONS // 6, 3), scenario)


def _command(peer, line: str, expected: str) -> None:
    """Send ``line`` to a peer child and check its reply; a dead peer's stderr (its
    fatal-signal traceback) goes into the failure message."""
    peer.stdin.write(line + "\n")
    peer.stdin.flush()
    reply = peer.stdout.readline().strip()
    if reply != expected:
        peer.wait(timeout=STARTUP_TIMEOUT_S)
        pytest.fail(f"peer replied {reply!r} to {line!r}, expected {expected!r}; "
                    f"exit status {peer.returncode}:\n{peer.stderr.read()}")


@pytest.mark.parametrize(
    ("when", "preload"),
    [("creating", [3000]), ("created", [3000, 3000])],
    ids=["die-before-creating-next-segment", "die-after-creating-next-segment"],
)
@pytest.mark.parametrize("durability", ["none", "always"])
def test_appender_survives_a_peer_killed_inside_a_roll(
    tmp_path: Path, durability: str, when: str, preload: list[int]
) -> None:
    """A process dies inside a roll, just before or just after creating the next
    segment's file; another process that has the partition open keeps appending,
    rolls past the dead one's segment, and every record it wrote reads back.

    With one preloaded record the segment has no index entry yet; with two it has
    one (each case reaches a different part of the roll)."""
    path = str(tmp_path / "log")
    _create_topic(path, {"durability": durability, "segment_bytes": 8192,
                         "index_interval_bytes": 1024})
    sizes = [*preload, 100, 6000]  # the last one rolls the segment
    peer = _children.start("peer", path, TOPIC, stdin=True)
    try:
        assert peer.stdout.readline() == "ready 0\n"
        for offset, size in enumerate(preload):
            _command(peer, f"{size} {97 + offset}", f"ok {offset}")
        roller = _children.start("die-in-roll", path, TOPIC, 6000, when)
        _, roller_err = roller.communicate(timeout=STARTUP_TIMEOUT_S)
        assert roller.returncode == -signal.SIGKILL, roller_err
        for offset in range(len(preload), len(sizes)):
            _command(peer, f"{sizes[offset]} {97 + offset}", f"ok {offset}")
        peer.stdin.close()
        assert peer.wait(timeout=STARTUP_TIMEOUT_S) == 0, peer.stderr.read()
    finally:
        if peer.poll() is None:
            peer.kill()
            peer.wait()
        peer.stdout.close()
        peer.stderr.close()
    with mqlog.open(path) as log:
        back = log.read(TOPIC, 0, 0)
        assert [(r.offset, r.value[:1], len(r.value)) for r in back] == [
            (offset, bytes([97 + offset]), size) for offset, size in enumerate(sizes)]
        assert [r.value for r in back] == [bytes([97 + i]) * size for i, size in enumerate(sizes)]
        _check_append_after_recovery(log, 0, 0)


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="set MQLOG_SOAK=1 for the long crash soak")
@pytest.mark.parametrize("durability", ["always", "interval", "none"])
def test_kill9_soak(tmp_path: Path, durability: str) -> None:
    crash_series(tmp_path, max(ITERATIONS // 3, 10),
                 _killed(5, durability=durability, segment_bytes=32768,
                         index_interval_bytes=1024, flush_ms=5))


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="set MQLOG_SOAK=1 for the long crash soak")
def test_kill9_two_appenders_soak(tmp_path: Path) -> None:
    scenario = functools.partial(crash_two_appenders, topic_config={
        "durability": "none", "segment_bytes": 16384, "index_interval_bytes": 512})
    crash_series(tmp_path, max(ITERATIONS // 3, 10), scenario)
