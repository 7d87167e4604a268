"""Figure 9: takeover after a group member is killed with SIGKILL.

Workload: a fresh log with one topic of 64 partitions (durability="none").
A feeder thread of this process appends one 100-byte record to every partition
(one ``Log.append`` each) every 10 ms for the whole run: 6,400 records/s when a
round of 64 appends fits in 10 ms; the rate achieved is reported. Four member processes (this
script with ``--member``) join one group (``subscribe``, default settings:
sticky assignor, ``group_check_interval_ms=100``; ``auto_offset_reset=
"earliest"``, auto-commit every second) and loop on ``poll(timeout=0.05)``.
Each member reports on its stdout, one ``os.write`` per line and with
``time.monotonic_ns()`` (one clock for every process on Linux), when it was
assigned partitions and when it first fetched records of each partition since
it was assigned that partition.

Once every member owns 16 partitions and has fetched from all of them, the
oldest member is killed with SIGKILL. Timed: from just before the kill until
the survivors have fetched records of every partition the victim owned
(takeover), and until they own all of them (ownership). Then a new member
joins, the group settles again (4 x 16, all fetched) and the next member is
killed: ``--kills`` kills (default 3; ``--quick``: 1), median reported.

Figures: takeover seconds (target <= 1 s), ownership seconds.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import _common

import mqlog
from mqlog.consumer import TopicPartition

BENCH = "rebalance"
PARTITIONS = 64
MEMBERS = 4
GROUP = "rebalance"
FEED_INTERVAL_S = 0.01
POLL_TIMEOUT_S = 0.05
AUTO_COMMIT_MS = 1000
#: Longest wait for the group to settle or for a takeover (a loaded machine is slow).
SETTLE_TIMEOUT_S = 60.0
TARGET_SECONDS = 1.0


# -- the member processes --------------------------------------------------------------


def _say(line: str) -> None:
    """One line on stdout in one write: a kill never leaves half a line."""
    os.write(1, (line + "\n").encode())


def run_member(path: str, stop_file: str) -> None:
    """Consume the topic until ``stop_file`` exists, reporting assignments
    (``assigned NS P,P,...``, ``revoked NS P,...``) and first fetches (``fetch NS P``)."""
    fresh: set[int] = set()

    def assigned(partitions: set[TopicPartition]) -> None:
        numbers = {tp.partition for tp in partitions}
        fresh.update(numbers)
        _say(f"assigned {time.monotonic_ns()} {','.join(map(str, sorted(numbers)))}")

    def revoked(partitions: set[TopicPartition]) -> None:
        numbers = {tp.partition for tp in partitions}
        fresh.difference_update(numbers)
        _say(f"revoked {time.monotonic_ns()} {','.join(map(str, sorted(numbers)))}")

    with mqlog.open(path, create=False) as log:
        consumer = log.consumer(GROUP, auto_offset_reset="earliest", enable_auto_commit=True,
                                auto_commit_interval_ms=AUTO_COMMIT_MS)
        consumer.subscribe([_common.TOPIC], on_assigned=assigned, on_revoked=revoked)
        while not os.path.exists(stop_file):
            messages = consumer.poll(timeout=POLL_TIMEOUT_S)
            now = time.monotonic_ns()
            for number in {message.partition for message in messages} & fresh:
                fresh.discard(number)
                _say(f"fetch {now} {number}")
        consumer.close()


# -- the parent: members, feeder, kills -----------------------------------------------


class Member:
    """A member process and what it reported (read by a pump thread)."""

    def __init__(self, path: str, stop_file: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--member", path, stop_file],
            stdout=subprocess.PIPE, text=True)
        self.owned: set[int] = set()
        #: partition -> time (ns) of the first fetch since it was last assigned.
        self.fetched: dict[int, int] = {}
        #: partition -> time (ns) it was last assigned.
        self.assigned_at: dict[int, int] = {}
        self._lock = threading.Lock()
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.endswith("\n"):
                self._apply(line.split())

    def _apply(self, fields: list[str]) -> None:
        """Record one reported line: ``EVENT NS [P,P,...]``."""
        event, when = fields[0], int(fields[1])
        numbers = {int(n) for n in fields[2].split(",")} if len(fields) > 2 else set()
        with self._lock:
            if event == "assigned":
                self.owned |= numbers
                for number in numbers:
                    self.assigned_at[number] = when
                    self.fetched.pop(number, None)
            elif event == "revoked":
                self.owned -= numbers
            elif event == "fetch":
                self.fetched.update(dict.fromkeys(numbers, when))

    def snapshot(self) -> tuple[set[int], dict[int, int], dict[int, int]]:
        """(owned, first fetch times, assignment times), copied under the lock."""
        with self._lock:
            return set(self.owned), dict(self.fetched), dict(self.assigned_at)

    def settled(self, share: int) -> bool:
        """Owns ``share`` partitions and has fetched records of each of them."""
        owned, fetched, _assigned = self.snapshot()
        return len(owned) == share and owned <= set(fetched)

    def kill(self) -> None:
        """SIGKILL: the kernel releases the member's flocks, nothing else runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """Wait for a member asked to stop (stop file) to leave; kill it if it hangs."""
        try:
            self.process.wait(timeout=SETTLE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
        self._pump.join(timeout=5)
        self.process.stdout.close()


def feed(log: mqlog.Log, stop: threading.Event, fed: list[float]) -> None:
    """Append one record to every partition every FEED_INTERVAL_S (a fixed
    schedule; a late round starts the next at once) until ``stop``; ``fed``
    gets the records appended and the seconds taken."""
    value = [_common.payloads(1)[0]]
    start = time.monotonic()
    rounds = 0
    while not stop.wait(max(start + rounds * FEED_INTERVAL_S - time.monotonic(), 0)):
        for partition in range(PARTITIONS):
            log.append(_common.TOPIC, partition, value)
        rounds += 1
    fed.extend((rounds * PARTITIONS, time.monotonic() - start))


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` every 5 ms; raise after SETTLE_TIMEOUT_S."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {SETTLE_TIMEOUT_S} s waiting for {what}")
        time.sleep(0.005)


def kill_one(members: list[Member]) -> tuple[float, float, int]:
    """Kill the oldest member once the group is settled; return (takeover s,
    ownership s, partitions lost) as seen in the survivors' reports."""
    share = PARTITIONS // MEMBERS
    wait_until(lambda: all(m.settled(share) for m in members), "the group to settle")
    victim, survivors = members[0], members[1:]
    lost = victim.snapshot()[0]
    killed_ns = time.monotonic_ns()
    victim.kill()
    taken: dict[int, int] = {}
    fetched: dict[int, int] = {}

    def all_fetched() -> bool:
        for member in survivors:
            _owned, first_fetch, assigned_at = member.snapshot()
            taken.update({p: t for p, t in assigned_at.items() if p in lost and t > killed_ns})
            fetched.update({p: t for p, t in first_fetch.items() if p in lost and t > killed_ns})
        return set(fetched) == lost

    wait_until(all_fetched, "the survivors to fetch the victim's partitions")
    members.remove(victim)
    victim.stop()
    return ((max(fetched.values()) - killed_ns) / 1e9, (max(taken.values()) - killed_ns) / 1e9,
            len(lost))


def run(path: str, kills: int) -> tuple[list[float], list[float], int, list[float]]:
    """The whole run; returns (takeover s per kill, ownership s per kill, partitions
    lost per kill, [records appended, seconds of feeding])."""
    stop_file = os.path.join(path, "stop")
    with mqlog.open(path) as log:
        log.create_topic(_common.TOPIC, partitions=PARTITIONS, durability="none")
        stop, fed = threading.Event(), []
        feeder = threading.Thread(target=feed, args=(log, stop, fed), name="feeder")
        feeder.start()
        members = [Member(path, stop_file) for _ in range(MEMBERS)]
        takeover, ownership, lost = [], [], set()
        try:
            for number in range(kills):
                _common.progress(f"{BENCH}: kill {number + 1} of {kills}")
                seconds, owned_s, count = kill_one(members)
                takeover.append(seconds)
                ownership.append(owned_s)
                lost.add(count)
                members.append(Member(path, stop_file))
        finally:
            open(stop_file, "w").close()
            for member in members:
                member.stop()
            stop.set()
            feeder.join()
    assert lost == {PARTITIONS // MEMBERS}, lost
    return takeover, ownership, lost.pop(), fed


def arguments() -> argparse.Namespace:
    """``--kills`` and ``--quick`` (this figure has no record count to choose)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int,
                        help="members to kill one after the other (default 3)")
    parser.add_argument("--quick", action="store_true", help="one kill: a smoke run")
    return parser.parse_args()


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--member":
        run_member(sys.argv[2], sys.argv[3])
        return
    args = arguments()
    kills = args.kills or (1 if args.quick else 3)
    with _common.temporary_log_dir(BENCH) as path:
        takeover, ownership, lost, (records, seconds) = run(path, kills)
    # The feeder's real rate: on a loaded machine 64 appends may take longer than a round.
    shared = {"records": int(records), "partitions": PARTITIONS, "members": MEMBERS,
              "lost_partitions": lost, "kills": kills, "worst_s": round(max(takeover), 4),
              "feed_records_per_s": round(records / seconds)}
    _common.emit(BENCH, "takeover_seconds", _common.median(takeover), "s",
                 target_max=TARGET_SECONDS, **shared)
    shared["worst_s"] = round(max(ownership), 4)
    _common.emit(BENCH, "ownership_seconds", _common.median(ownership), "s", **shared)


if __name__ == "__main__":
    main()
