"""SIGKILL a process in the middle of multi-batch appends: after reopening, every
append is in the log whole or not at all.

A child (``_multibatch_child``) appends appends of 1..200 records split into
batches of 2 KiB and reports each one after ``append`` returned; the parent
kills it at a random moment. The directory as the dead process left it is then
opened twice: a copy as after a reboot (the boot id is patched, so recovery
rescans the newest segment to its end and meets complete batches of the append
that was in flight), and the directory itself (same boot: recovery trusts the
published end). Both must hold every acknowledged append and at most the one
in flight, whole. ``MQLOG_MULTIBATCH_SEED`` replays a seed (printed on
failure); ``MQLOG_SOAK=1`` runs many more kills.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mqlog
from mqlog.logstore import _state

from ._children import REPO_ROOT
from ._multibatch_child import append_values

TOPIC = "multibatch"
SOAK = os.environ.get("MQLOG_SOAK", "") not in ("", "0")
KILLS = 300 if SOAK else 8
MAX_KILL_DELAY_S = 0.05
STARTUP_TIMEOUT_S = 30.0


def _seed() -> int:
    return int(os.environ.get("MQLOG_MULTIBATCH_SEED")
               or random.SystemRandom().randrange(2**32))


def _reboot(patch: pytest.MonkeyPatch) -> None:
    other = bytes(b ^ 0xFF for b in _state.BOOT_ID)
    patch.setattr(_state, "BOOT_ID", other)


def _run_and_kill(path: Path, seed: int, generation: int, report: Path,
                  rng: random.Random) -> list[tuple[int, int, int]]:
    """Start the child, SIGKILL it once it appends for a while; its acks."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.crash._multibatch_child", str(path), TOPIC, str(seed),
         str(generation), str(report)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not (report.exists() and report.read_bytes().startswith(b"ready\n")):
            if child.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the child never got ready: {child.stderr.read()!r}")
            time.sleep(0.005)
        time.sleep(rng.uniform(0, MAX_KILL_DELAY_S))
    finally:
        child.kill()
        child.wait()
        child.stderr.close()
    return [tuple(map(int, line.split()[1:])) for line in report.read_text().splitlines()
            if line.startswith("ack ")]


def _read_all(directory: Path) -> list[bytes]:
    with mqlog.open(directory) as log:
        return [bytes(r.value) for r in log.read(TOPIC, 0, 0, max_records=10**7)]


@pytest.mark.soak
def test_a_killed_multibatch_append_is_whole_or_absent(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    seed = _seed()
    rng = random.Random(seed)
    path = tmp_path / "log"
    with mqlog.open(path) as log:
        log.create_topic(TOPIC, segment_bytes=256 * 1024)
    kept: list[bytes] = []  # every record the log holds after the last generation
    in_flight_kept = 0
    for generation in range(KILLS):
        acks = _run_and_kill(path, seed, generation, tmp_path / f"report{generation}", rng)
        acknowledged = [value for append in range(len(acks))
                        for value in append_values(seed, generation, append)]
        in_flight = append_values(seed, generation, len(acks))
        copy = tmp_path / "rebooted"
        shutil.copytree(path, copy)
        with monkeypatch.context() as patch:
            _reboot(patch)
            after_reboot = _read_all(copy)
        shutil.rmtree(copy)
        same_boot = _read_all(path)
        for name, records in (("after a reboot", after_reboot), ("same boot", same_boot)):
            where = (f"generation {generation} ({name}, {len(acks)} acks); "
                     f"replay with MQLOG_MULTIBATCH_SEED={seed}")
            assert records[: len(kept)] == kept, where
            assert records[len(kept) : len(kept) + len(acknowledged)] == acknowledged, where
            assert records[len(kept) + len(acknowledged) :] in ([], in_flight), where
        in_flight_kept += len(same_boot) > len(kept) + len(acknowledged)
        kept = same_boot
    print(f"kills={KILLS} records={len(kept)} in_flight_kept={in_flight_kept} seed={seed}")
