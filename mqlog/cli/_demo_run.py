"""What ``mqlog demo`` does and checks, in a temporary directory removed afterwards.

1. Create the topic ``orders`` with PARTITIONS partitions; start WORKERS worker
   processes in one consumer group (:mod:`mqlog.cli._demo_proc`) and wait until
   the group has shared the partitions among them.
2. Start PRODUCERS producer processes sending ``records`` orders in all, keyed by
   customer, spread over ``seconds``.
3. Watch the group every SAMPLE_S (the live view gets a :class:`Snapshot`).
   Once half the orders are committed, SIGKILL one worker and time how long
   until the group hands its partitions to the others.
4. When every order is written and committed, stop the workers and check:
   every producer's orders were acknowledged and are in the log exactly once;
   every customer's orders are in one partition; every offset was processed at
   least once (workers' ledgers) and none was lost; the group's committed
   offsets reached the end; the dead worker's partitions were taken over;
   ``verify`` finds no damage.

Every check that fails adds a line to ``DemoResult.failures``; the command
exits 1 when there is any.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mqlog
from mqlog.cli._demo_proc import GROUP, TOPIC
from mqlog.consumer import GroupDescription
from mqlog.logstore.verify import verify_log
from mqlog.monitor import partition_lag

PARTITIONS = 6
PRODUCERS = 3
WORKERS = 3
#: Simulated processing time of one order in a worker.
WORK_US = 200
#: Time between two looks at the group (and two updates of the live view).
SAMPLE_S = 0.2
#: Longest wait for the workers to join, and for everything after the producers.
JOIN_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 30.0
#: The worker killed half-way.
VICTIM = "worker-2"
#: Lines of the event log the live view keeps.
EVENTS_SHOWN = 8


@dataclasses.dataclass(frozen=True)
class PartitionView:
    partition: int
    owner: str | None
    committed: int | None
    end: int
    start: int = 0

    @property
    def lag(self) -> int:
        return partition_lag(self.committed, self.start, self.end)


@dataclasses.dataclass(frozen=True)
class WorkerView:
    name: str
    pid: int
    state: str
    partitions: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What the live view shows at one moment of the run."""

    elapsed: float
    records: int
    produced: int
    committed: int
    generation: int
    partitions: list[PartitionView]
    workers: list[WorkerView]
    events: list[str]

    @property
    def lag(self) -> int:
        """The group's lag: the sum of its partitions'."""
        return sum(p.lag for p in self.partitions)


@dataclasses.dataclass(frozen=True)
class DemoResult:
    records: int
    #: Orders the producers' deliveries confirmed, and the records in the topic.
    acknowledged: int
    in_log: int
    #: Ledger lines of all workers, distinct offsets among them, and the offsets
    #: of the topic that no worker processed (must be 0).
    processed: int
    unique_processed: int
    lost: int
    #: Customers, and customers whose orders are in more than one partition (must be 0).
    customers: int
    customers_split: int
    killed_worker: str
    killed_partitions: tuple[int, ...]
    takeover_seconds: float | None
    produce_seconds: float
    consume_seconds: float
    total_seconds: float
    verify_errors: int
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def duplicates(self) -> int:
        """Orders processed more than once (those the killed worker had not committed)."""
        return self.processed - self.unique_processed

    @property
    def produce_rate(self) -> float:
        return self.acknowledged / max(self.produce_seconds, 1e-9)

    @property
    def consume_rate(self) -> float:
        return self.processed / max(self.consume_seconds, 1e-9)


OnSnapshot = Callable[[Snapshot], None]


def run_demo(records: int, seconds: float, on_snapshot: OnSnapshot | None = None) -> DemoResult:
    """Run the scenario of the module docstring with ``records`` orders produced over
    ``seconds``."""
    with tempfile.TemporaryDirectory(prefix="mqlog-demo-") as root:
        demo = _Demo(Path(root), records, seconds, on_snapshot or (lambda snapshot: None))
        try:
            return demo.run()
        finally:
            demo.stop_everything()


class _Demo:
    """One run: the processes, what was seen of the group, the checks."""

    def __init__(self, root: Path, records: int, seconds: float, on_snapshot: OnSnapshot) -> None:
        self.root = root
        self.log_path = root / "log"
        self.records = records
        self.seconds = seconds
        self.on_snapshot = on_snapshot
        self.began = time.monotonic()
        self.workers: dict[str, subprocess.Popen] = {}
        self.producers: list[subprocess.Popen[bytes]] = []
        self.events: list[str] = []
        self.failures: list[str] = []
        self.generation = -1
        self.killed_at: float | None = None
        self.killed_partitions: tuple[int, ...] = ()
        self.takeover_seconds: float | None = None
        self.produce_started = self.began
        self.produce_done: float | None = None
        #: From the first order sent to the last one written (the producers' clocks).
        self.produce_seconds = 0.0
        self.consume_started: float | None = None
        self.consume_done: float | None = None
        self.acknowledged = 0
        #: Processes already reported as failed.
        self.crashed: set[str] = set()

    # -- the scenario -----------------------------------------------------------------------

    def run(self) -> DemoResult:
        try:
            with mqlog.open(self.log_path) as log:
                log.create_topic(TOPIC, partitions=PARTITIONS)
                for number in range(1, WORKERS + 1):
                    self._start_worker(f"worker-{number}")
                self._wait_for_workers(log)
                self.produce_started = time.monotonic()
                for index in range(PRODUCERS):
                    self._start_producer(index, self.records // PRODUCERS
                                         + (index < self.records % PRODUCERS))
                self.event(f"{PRODUCERS} producers started: {self.records:,} orders over "
                           f"{self.seconds:g} s")
                self._watch(log)
        except _Failed as failure:
            self.failures.append(str(failure))
        self._stop_workers()
        return self._check()

    def event(self, text: str) -> None:
        self.events.append(f"{time.monotonic() - self.began:6.1f}s  {text}")

    def _spawn(self, *arguments: str, name: str) -> subprocess.Popen:
        command = [sys.executable, "-m", "mqlog.cli._demo_proc", *arguments]
        # cwd: ``-m`` puts the working directory first on sys.path; the caller's may
        # hold files that shadow modules.
        with open(self.root / f"{name}.err", "wb") as errors:
            return subprocess.Popen(command, cwd=self.root, stdout=subprocess.PIPE,
                                    stderr=errors)

    def _start_worker(self, name: str) -> None:
        self.workers[name] = self._spawn(
            "worker", str(self.log_path), name, str(self.root / f"{name}.ledger"),
            str(self.root / "stop"), str(WORK_US), name=name)

    def _start_producer(self, index: int, count: int) -> None:
        self.producers.append(self._spawn(
            "producer", str(self.log_path), str(index), str(count), str(self.seconds),
            name=f"producer-{index}"))

    def _wait_for_workers(self, log: mqlog.Log) -> None:
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        while time.monotonic() < deadline:
            description = self._describe(log)
            if description is not None and description.state == "Stable" and len(
                    description.members) == WORKERS:
                self._sample(log)
                return
            self._check_processes()
            self._sample(log)
            time.sleep(SAMPLE_S)
        raise _Failed(f"the {WORKERS} workers did not form a stable group within "
                      f"{JOIN_TIMEOUT_S:g} s")

    def _watch(self, log: mqlog.Log) -> None:
        """Sample until every order is written and committed (or time runs out)."""
        deadline = None
        while True:
            snapshot = self._sample(log)
            self._check_processes()
            if self.consume_started is None and snapshot.committed:
                self.consume_started = time.monotonic()
            if self.killed_at is None and snapshot.committed >= self.records / 2:
                self._kill_victim(snapshot)
            if self.produce_done is None and all(p.poll() is not None for p in self.producers):
                self._producers_finished()
                deadline = time.monotonic() + DRAIN_TIMEOUT_S
            if (self.produce_done is not None and self.takeover_seconds is not None
                    and snapshot.committed >= snapshot.produced >= self.acknowledged):
                self.consume_done = time.monotonic()
                self.event("every order is committed: stopping the workers")
                self._sample(log)
                return
            if deadline is not None and time.monotonic() > deadline:
                raise _Failed(f"orders still not all committed {DRAIN_TIMEOUT_S:g} s after "
                              f"the producers finished")
            time.sleep(SAMPLE_S)

    def _kill_victim(self, snapshot: Snapshot) -> None:
        victim = self.workers[VICTIM]
        owned = next(w.partitions for w in snapshot.workers if w.name == VICTIM)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.killed_at = time.monotonic()
        self.killed_partitions = owned
        self.event(f"SIGKILL {VICTIM} (pid {victim.pid}) owning partitions "
                   f"{_numbers(owned)} at {snapshot.committed:,} orders committed")

    def _producers_finished(self) -> None:
        """Read the producers' reports: orders written, and when they sent them."""
        self.produce_done = time.monotonic()
        windows = []
        for producer in self.producers:
            assert producer.stdout is not None  # started with stdout=PIPE
            report = producer.stdout.read().decode().split()
            if producer.returncode != 0 or len(report) != 8:
                raise _Failed(f"a producer failed with exit code {producer.returncode}: "
                              f"{self._errors(producer)}")
            self.acknowledged += int(report[1])
            if int(report[3]):
                self.failures.append(f"{report[3]} orders of a producer were not written")
            windows.append((float(report[5]), float(report[7])))
        self.produce_seconds = max(end for _s, end in windows) - min(s for s, _e in windows)
        self.event(f"producers done: {self.acknowledged:,} orders acknowledged, sent in "
                   f"{self.produce_seconds:.1f} s")

    def _check_processes(self) -> None:
        """A worker that died without being killed fails the demo at once."""
        for name, worker in self.workers.items():
            if worker.poll() is not None and not (name == VICTIM and self.killed_at):
                self.crashed.add(name)
                raise _Failed(f"{name} exited with code {worker.returncode}: "
                              f"{self._errors(worker)}")

    def _errors(self, process: subprocess.Popen) -> str:
        name = next((n for n, p in self.workers.items() if p is process), None) or (
            f"producer-{self.producers.index(process)}")
        text = (self.root / f"{name}.err").read_text(errors="replace").strip()
        return text.splitlines()[-1] if text else "no message"

    def _stop_workers(self) -> None:
        (self.root / "stop").touch()
        for name, worker in self.workers.items():
            try:
                code = worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()
                code = worker.wait()
                self.failures.append(f"{name} did not stop within 10 s")
            if code != 0 and name != VICTIM and name not in self.crashed:
                self.failures.append(f"{name} exited with code {code}: {self._errors(worker)}")

    def stop_everything(self) -> None:
        """Leave no process behind, whatever happened."""
        for process in [*self.producers, *self.workers.values()]:
            if process.poll() is None:
                process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()

    # -- watching the group ----------------------------------------------------------------

    @staticmethod
    def _describe(log: mqlog.Log) -> GroupDescription | None:
        return log.describe_group(GROUP) if GROUP in log.list_groups() else None

    def _sample(self, log: mqlog.Log) -> Snapshot:
        description = self._describe(log)
        ends = [log.end_offset(TOPIC, number) for number in range(PARTITIONS)]
        names: dict[str | None, str] = (
            {m.member_id: m.client_id for m in description.members} if description else {})
        rows = {p.partition: p for p in description.partitions} if description else {}
        partitions = [PartitionView(number, names.get(rows[number].member_id) if number in rows
                                    else None,
                                    rows[number].committed_offset if number in rows else None,
                                    end, log.start_offset(TOPIC, number))
                      for number, end in enumerate(ends)]
        if description is not None:
            self._follow_generation(description, partitions)
        snapshot = Snapshot(time.monotonic() - self.began, self.records, sum(ends),
                            sum(p.committed or 0 for p in partitions),
                            description.generation if description else 0, partitions,
                            self._worker_views(partitions), self.events[-EVENTS_SHOWN:])
        self.on_snapshot(snapshot)
        return snapshot

    def _follow_generation(self, description: GroupDescription,
                           partitions: list[PartitionView]) -> None:
        """Log each new plan; note when the killed worker's partitions have new owners."""
        if description.generation != self.generation:
            self.generation = description.generation
            plan = " | ".join(f"{m.client_id}: {_numbers(tuple(p for _t, p in m.assignment))}"
                              for m in description.members)
            self.event(f"generation {description.generation}: {plan or 'no members'}")
        if self.killed_at is not None and self.takeover_seconds is None and all(
                partitions[n].owner not in (None, VICTIM) for n in self.killed_partitions):
            self.takeover_seconds = time.monotonic() - self.killed_at
            self.event(f"partitions {_numbers(self.killed_partitions)} of {VICTIM} taken "
                       f"over in {self.takeover_seconds:.2f} s")

    def _worker_views(self, partitions: list[PartitionView]) -> list[WorkerView]:
        views = []
        for name, process in self.workers.items():
            if process.poll() is None:
                state = "running"
            else:
                state = "killed" if name == VICTIM and self.killed_at else "stopped"
            owned = tuple(p.partition for p in partitions if p.owner == name)
            views.append(WorkerView(name, process.pid, state, owned))
        return views

    # -- the checks ---------------------------------------------------------------------------

    def _check(self) -> DemoResult:
        with mqlog.open(self.log_path) as log:
            offsets, customers, split = read_topic(log)
            description = self._describe(log)
        processed = read_ledgers([self.root / f"{name}.ledger" for name in self.workers])
        unique = set(processed)
        lost = len(offsets - unique)
        if self.produce_done is not None and len(offsets) != self.acknowledged:
            self.failures.append(f"the topic holds {len(offsets):,} orders, the producers "
                                 f"acknowledged {self.acknowledged:,}")
        if self.produce_done is not None and self.acknowledged != self.records:
            self.failures.append(f"{self.records - self.acknowledged:,} orders were not "
                                 f"acknowledged")
        if lost:
            self.failures.append(f"{lost:,} orders were never processed (lost)")
        if split:
            self.failures.append(f"{split} customers have orders in several partitions")
        if description is not None and description.total_lag:
            self.failures.append(f"the group's committed offsets are {description.total_lag:,} "
                                 f"behind the end")
        report = verify_log(self.log_path)
        self.failures.extend(f"verify: {p.location()}: {p.description}" for p in report.errors)
        return DemoResult(
            self.records, self.acknowledged, len(offsets), len(processed), len(unique), lost,
            customers, split, VICTIM, self.killed_partitions, self.takeover_seconds,
            self.produce_seconds,
            (self.consume_done or time.monotonic()) - (self.consume_started
                                                       or self.produce_started),
            time.monotonic() - self.began, len(report.errors), tuple(self.failures))

def read_topic(log: mqlog.Log) -> tuple[set[tuple[int, int]], int, int]:
    """(every (partition, offset) holding a distinct order, customers, customers
    found in more than one partition)."""
    offsets = set()
    orders = set()
    homes: dict[bytes, set[int]] = collections.defaultdict(set)
    for number in range(PARTITIONS):
        for record in log.iter(TOPIC, number):
            key, offset = record.key, record.offset
            assert key is not None and offset is not None  # orders are keyed; read: offset set
            order = json.loads(record.value)["order"]
            if order not in orders:
                orders.add(order)
                offsets.add((number, offset))
            homes[bytes(key)].add(number)
    return offsets, len(homes), sum(len(found) > 1 for found in homes.values())


def read_ledgers(paths: list[Path]) -> list[tuple[int, int]]:
    """Every complete ``PARTITION OFFSET`` line of the workers' ledgers (a killed
    worker may leave a cut last line)."""
    processed = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines(keepends=True):
            fields = line.split()
            if line.endswith("\n") and len(fields) == 2:
                processed.append((int(fields[0]), int(fields[1])))
    return processed


class _Failed(Exception):
    """The scenario cannot go on; the message says why."""


def _numbers(partitions: tuple[int, ...]) -> str:
    return ",".join(map(str, partitions)) or "none"
