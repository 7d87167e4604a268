"""Queue groups across real processes: competing workers, SIGKILLs, a poison pill.

Workers are separate interpreters (``_children`` role ``worker``) that log every
message they receive (with its delivery count) before working on it and every
ack after it returned, to their own ledger. The parent appends the records,
kills workers with SIGKILL and starts new ones, waits until the group finished
every record (the ``start`` of each partition's share state reaches the end
offset), stops the workers and checks the ledgers:

- no failures: every record is received and acked exactly once;
- random SIGKILLs: every record at least once; a record is never received by
  a ``receive`` call that began after some worker's ack of it returned; only
  the batches of killed workers are received twice;
- a poison pill (its handler SIGKILLs its own process every time) reaches the
  dead-letter topic after ``max_deliveries`` hand-outs while the others flow;
  received in batches, its batch-mates come back with it but are finished,
  since a last attempt is handed out alone.

``MQLOG_QUEUE_SEED`` replays a seed (printed on failure); ``MQLOG_SOAK=1``
runs the long variants.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import mqlog
from tests import _soak_summary
from tests.queue._children import Entry, fill, queue_position, read_ledger, start

SOAK = os.environ.get("MQLOG_SOAK", "") not in ("", "0")
TOPIC = "work"
GROUP = "g"
PARTITIONS = 4
BATCH = 10
#: Generous bounds for a loaded 2-core machine.
STARTUP_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 60.0


def _seed() -> int:
    return int(os.environ.get("MQLOG_QUEUE_SEED") or random.SystemRandom().randrange(2**32))


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


class Worker:
    """A worker process, the lines it printed and its ledger."""

    def __init__(self, directory: Path, log_dir: Path, name: str, **settings: object) -> None:
        self.name = name
        self.ledger = directory / f"{name}.ledger"
        self.stop_file = directory / f"{name}.stop"
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = start("worker", log=str(log_dir), group=GROUP, topic=TOPIC,
                             ledger=str(self.ledger), stop=str(self.stop_file), **settings)
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.endswith("\n"):
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._changed.notify_all()

    def wait_ready(self) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: "ready" in self.lines, STARTUP_TIMEOUT_S):
                raise AssertionError(f"{self.name} did not start: {self.errors()}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        self.stop_file.touch()
        self.process.wait(timeout=STARTUP_TIMEOUT_S)
        self._pump.join(timeout=5)
        assert self.process.returncode == 0, self.errors()
        assert self.lines[-1:] == ["closed"], self.lines

    def errors(self) -> str:
        if self.alive() or self.process.stderr.closed:
            return ""
        return self.process.stderr.read()

    def close_pipes(self) -> None:
        for stream in (self.process.stdout, self.process.stderr):
            stream.close()


class Pool:
    """The worker processes of one test; whatever is left is killed at teardown."""

    def __init__(self, directory: Path, log_dir: Path, **settings: object) -> None:
        self.directory = directory
        self.log_dir = log_dir
        self.settings = settings
        self.workers: list[Worker] = []

    def start(self, count: int = 1, wait: bool = True) -> list[Worker]:
        started = [Worker(self.directory, self.log_dir, f"w{len(self.workers) + i}",
                          **self.settings) for i in range(count)]
        self.workers += started
        for worker in started if wait else ():
            worker.wait_ready()
        return started

    def live(self) -> list[Worker]:
        return [worker for worker in self.workers if worker.alive()]

    def entries(self) -> list[Entry]:
        return [entry for worker in self.workers for entry in read_ledger(worker.ledger)]

    def stop_all(self) -> None:
        for worker in self.live():
            worker.stop_file.touch()
        for worker in self.live():
            worker.stop()

    def teardown(self) -> None:
        for worker in self.workers:
            if worker.alive():
                worker.kill()
            worker.close_pipes()


@pytest.fixture
def log(log_dir):
    with mqlog.open(log_dir, durability="none") as opened:
        opened.create_topic(TOPIC, partitions=PARTITIONS)
        yield opened


def make_pool(tmp_path: Path, log_dir: Path, **settings: object):
    defaults = {"ack_timeout_s": 30, "max_deliveries": 50, "batch": BATCH, "work_ms": 1,
                "poison": None}
    return Pool(tmp_path, log_dir, **{**defaults, **settings})


@pytest.fixture
def pool_factory(tmp_path, log_dir):
    pools: list[Pool] = []

    def make(**settings: object) -> Pool:
        pools.append(make_pool(tmp_path, log_dir, **settings))
        return pools[-1]

    yield make
    for pool in pools:
        pool.teardown()


def fill_all(log: mqlog.Log, per_partition: int) -> set[tuple[int, int]]:
    for partition in range(PARTITIONS):
        fill(log, TOPIC, partition, per_partition)
    return {(p, o) for p in range(PARTITIONS) for o in range(per_partition)}


def finished(log: mqlog.Log) -> bool:
    """True once the group finished every record of every partition."""
    return all(queue_position(log.path, GROUP, TOPIC, p) == log.end_offset(TOPIC, p)
               for p in range(PARTITIONS))


def by_record(entries: list[Entry], kind: str) -> dict[tuple[int, int], list[Entry]]:
    grouped: dict[tuple[int, int], list[Entry]] = collections.defaultdict(list)
    for entry in entries:
        if entry.kind == kind:
            grouped[entry.partition, entry.offset].append(entry)
    return grouped


# -- no failures: exactly once ---------------------------------------------------------------------


def test_competing_workers_process_every_record_exactly_once(log, pool_factory):
    pool = pool_factory()
    workers = pool.start(4)
    records = fill_all(log, 300)
    wait_until(lambda: finished(log), DRAIN_TIMEOUT_S, "the workers to finish every record")
    pool.stop_all()
    entries = pool.entries()
    received, acked = by_record(entries, "recv"), by_record(entries, "ack")
    assert set(received) == records and set(acked) == records
    assert [key for key, items in received.items() if len(items) != 1] == []
    assert [key for key, items in acked.items() if len(items) != 1] == []
    assert {items[0].deliveries for items in received.values()} == {1}
    assert [e for e in entries if e.kind == "lost"] == []
    busy = [w.name for w in workers if read_ledger(w.ledger)]
    assert len(busy) >= 2, busy
    assert "work.dlq" not in log.topics()


# -- SIGKILLs: at least once, acked never again ----------------------------------------------------


def run_with_kills(log: mqlog.Log, pool: Pool, per_partition: int, kills: int,
                   seed: int) -> None:
    rng = random.Random(seed)
    pool.start(4)
    records = fill_all(log, per_partition)
    done = 0
    while done < kills and not finished(log):
        time.sleep(rng.uniform(0.05, 0.2))
        live = pool.live()
        if live:
            rng.choice(live).kill()
            done += 1
        pool.start(1, wait=False)
    wait_until(lambda: finished(log), DRAIN_TIMEOUT_S, "the workers to finish every record")
    pool.stop_all()
    assert done == kills, f"the workers finished after {done} of {kills} kills"
    check_at_least_once(log, pool, records, done)


def check_at_least_once(log: mqlog.Log, pool: Pool, records: set[tuple[int, int]],
                        kills: int) -> None:
    entries = pool.entries()
    received, acked = by_record(entries, "recv"), by_record(entries, "ack")
    assert set(received) == records
    assert [e for e in entries if e.kind == "lost"] == []
    for key, items in received.items():
        counts = [item.deliveries for item in items]
        assert len(set(counts)) == len(counts), (key, items)  # each hand-out counted
        first_ack = min((item.at for item in acked.get(key, [])), default=None)
        late = [item for item in items if first_ack is not None and item.at > first_ack]
        assert late == [], (key, first_ack, late)
    twice = sum(len(items) - 1 for items in received.values())
    assert twice <= kills * BATCH, (twice, kills)
    assert "work.dlq" not in log.topics()


def test_killed_workers_lose_no_record_and_acked_records_never_come_back(log, pool_factory):
    seed = _seed()
    try:
        run_with_kills(log, pool_factory(work_ms=2), per_partition=400, kills=5, seed=seed)
    except AssertionError as error:
        raise AssertionError(f"MQLOG_QUEUE_SEED={seed}: {error}") from error


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="MQLOG_SOAK=1 runs the long variant")
def test_killed_workers_soak(log, pool_factory):
    seed = _seed()
    try:
        run_with_kills(log, pool_factory(work_ms=2), per_partition=3000, kills=40, seed=seed)
    except AssertionError as error:
        raise AssertionError(f"MQLOG_QUEUE_SEED={seed}: {error}") from error
    totals = _soak_summary.Totals("queue_kill_storm")
    totals.add(crashes=40, acknowledged=3000 * PARTITIONS)
    totals.write()


# -- the poison pill -------------------------------------------------------------------------------


POISON = b"poison"


@pytest.mark.parametrize("batch", [1, BATCH])
def test_poison_pill_reaches_the_dead_letter_topic_while_the_rest_flows(log, pool_factory,
                                                                         batch):
    # With batches, the poison's batch-mates come back with it after each crash and
    # count deliveries too; their last attempt is handed out alone, so they survive.
    pool = pool_factory(batch=batch, work_ms=2, max_deliveries=3, poison=POISON.decode())
    pool.start(3)
    fill_all(log, 40)
    log.append(TOPIC, 0, [POISON])  # offset 40 of partition 0
    fill_all(log, 40)
    records = {(p, o) for p in range(PARTITIONS) for o in range(log.end_offset(TOPIC, p))}
    records.remove((0, 40))
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while not finished(log):
        assert time.monotonic() < deadline, "the queue did not finish"
        for _ in range(3 - len(pool.live())):
            pool.start(1, wait=False)  # replace the workers the poison killed
        time.sleep(0.05)
    pool.stop_all()
    died = [w.process.returncode for w in pool.workers if w.process.returncode != 0]
    assert died == [-signal.SIGKILL] * 3

    [dead] = log.read("work.dlq", 0, 0)
    assert dead.value == POISON
    assert {k: dead.headers[k] for k in ("dlq.partition", "dlq.offset", "dlq.delivery_count")} \
        == {"dlq.partition": b"0", "dlq.offset": b"40", "dlq.delivery_count": b"3"}
    assert [log.end_offset("work.dlq", p) for p in range(PARTITIONS)] == [1, 0, 0, 0]

    entries = pool.entries()
    received, acked = by_record(entries, "recv"), by_record(entries, "ack")
    poison = received.pop((0, 40))
    assert sorted(item.deliveries for item in poison) == [1, 2, 3]
    assert set(received) == records and set(acked) == records
    again = {key: items for key, items in received.items() if len(items) != 1}
    if batch == 1:
        assert again == {}
    else:  # only the poison's batch-mates, each acked on one of its three deliveries
        assert all(len(items) <= 3 and len(acked[key]) == 1 for key, items in again.items())
        receives = collections.Counter(entry.at for entry in entries if entry.kind == "recv")
        last_attempts = [entry for entry in entries
                         if entry.kind == "recv" and entry.deliveries == 3]
        assert all(receives[entry.at] == 1 for entry in last_attempts), last_attempts
    first, last = min(item.at for item in poison), max(item.at for item in poison)
    meanwhile = [key for key, items in acked.items() if first < items[0].at < last]
    assert meanwhile, "no other record was acked while the poison went round"
