"""Power losses and kill -9 crashes at random steps of a log's life (``_driver``).

A seeded simulation appends (``always``, ``interval``, ``none`` topics, tiny
segments), flushes, runs retention and compaction, commits group offsets,
receives and acks queue messages, creates and deletes a topic, and loses power
or crashes now and then; after each it reopens the log on the simulated disk
(``_simdisk``) and checks that nothing acknowledged durably is lost, nothing
corrupt is served, no offset is handed out again that must not be, and no
commit or ack goes backwards.

``MQLOG_POWER_SEED`` replays a seed (printed on failure); ``MQLOG_SOAK=1`` runs
the long version (``MQLOG_POWER_RUNS`` simulations, default 60, each with about
20 power losses). Counts go to the soak summary (``tests/_soak_summary``).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests import _soak_summary
from tests.faults._driver import Simulation

SOAK = os.environ.get("MQLOG_SOAK", "") not in ("", "0")

#: Checks that fail on the current code for reasons fixed elsewhere: each is
#: counted but does not fail the test. Remove an entry once its fix is in.
KNOWN_GAPS: dict[str, str] = {
    "offsets_reused_state_slot": (
        "after a power loss recovery rebuilds the end from the segment and ignores "
        "a valid state slot with a higher end: the offsets between are handed out again"),
    "offsets_reused_committed": (
        "a group's commit is flushed even when the records it covers are not "
        "(durability='none'/'interval'): after a power loss the end can fall below "
        "the committed offset and new records there are skipped by the group"),
    "read_failed_none": (
        "segments rolled under durability='none' are never flushed and recovery "
        "only re-reads the newest segment: after a power loss a closed segment "
        "with lost pages makes reads raise CorruptRecordError instead of the log "
        "being cut (or the gap recorded) there"),
    "fsync_failure_not_latched": (
        "an append after a failed fdatasync is acknowledged (test_disk_errors): the "
        "pages the failed flush dropped are not written again, so a power loss can "
        "cut the acknowledged records after them"),
    "create_topic_not_durable": (
        "create_topic fsyncs the topics directory but not the new topic's own "
        "directory: after a power loss the topic may exist without topic.json or its "
        "partitions (then it is neither usable nor creatable); the simulation makes a "
        "created topic durable at once"),
    "flush_skips_rolled_segments": (
        "Log.flush() fdatasyncs only each partition's active segment: records of a "
        "durability='none' topic in segments rolled since are not made durable; the "
        "simulation does not count a flush as making them durable"),
}


def _seed() -> int:
    return int(os.environ.get("MQLOG_POWER_SEED") or random.SystemRandom().randrange(2**32))


def simulate(root: Path, runs: int, steps: int, monkeypatch: pytest.MonkeyPatch,
             name: str) -> None:
    import mqlog.consumer._offsets as offsets

    monkeypatch.setattr(offsets, "OFFSETS_SEGMENT_BYTES", 4096)  # rolls and compaction
    seed = _seed()
    totals = _soak_summary.Totals(name)
    try:
        for run in range(runs):
            run_seed = seed + run
            simulation = Simulation(str(root / f"log{run}"), run_seed, KNOWN_GAPS)
            try:
                with simulation:
                    simulation.run(steps)
            except BaseException:
                print(f"MQLOG_POWER_SEED={run_seed} failed (runs={runs} steps={steps}); "
                      f"last findings: {simulation.log_lines[-5:]}")
                raise
            finally:
                counts = simulation.counts
                totals.add(power_losses=counts.power_losses, crashes=counts.crashes,
                           acknowledged=counts.acknowledged)
                for check, number in counts.violations.items():
                    totals.add(**{f"known_gap_{check}" if check in KNOWN_GAPS else check:
                                  number})
    finally:
        totals.write()


def test_power_loss_and_crash_simulation(tmp_path: Path, monkeypatch) -> None:
    simulate(tmp_path, 2, 60, monkeypatch, "power_loss")


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="set MQLOG_SOAK=1 for the long power-loss soak")
def test_power_loss_soak(tmp_path: Path, monkeypatch) -> None:
    simulate(tmp_path, int(os.environ.get("MQLOG_POWER_RUNS", "60")), 250, monkeypatch,
             "power_loss_soak")
