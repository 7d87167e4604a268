"""End-to-end latency with producer and consumer in separate processes.

The harness process sends stamped messages (``time.monotonic_ns()`` in the
first 8 bytes, padded to the message size) at a fixed rate, one message per
call; a consumer started as ``python -m peers.latency SPEC COUNT OUTPUT MAX_S``
receives them, takes the clock once per receive call (before acknowledging)
and saves every message's latency. CLOCK_MONOTONIC is one clock for every
process on Linux, so the difference is the delivery latency.

The first WARMUP_S of messages are not counted. A run whose consumer fell
behind (missing messages, or latencies that grew during the run, see
GROWTH_FACTOR) is reported as such: its figure would measure a growing
backlog, not latency.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from peers import core, servers

WARMUP_S = 0.3
#: How long the consumer may take after the last send before it gives up.
DRAIN_S = 5.0
STARTUP_TIMEOUT_S = 30.0
#: A run "fell behind" when the mean latency of its last tenth exceeds
#: GROWTH_FACTOR times that of its first tenth plus GROWTH_FLOOR_MS: the
#: latencies grew with a backlog instead of staying level.
GROWTH_FACTOR = 3.0
GROWTH_FLOOR_MS = 20.0
BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECEIVERS = {
    "mqlog": ("peers.mqlog_adapter", "receive"),
    "redis": ("peers.redis_adapter", "receive"),
    "nats": ("peers.nats_adapter", "receive"),
    "persist-queue": ("peers.sqlite_adapters", "receive_persist_queue"),
    "litequeue": ("peers.sqlite_adapters", "receive_litequeue"),
}


@dataclass(frozen=True)
class LatencyRun:
    """The outcome of one run: latencies (ns) of the counted messages."""

    rate: int
    sent: int
    received: int
    latencies_ns: np.ndarray

    @property
    def kept_up(self) -> bool:
        """False if messages are missing or the latency grew during the run."""
        latencies = self.latencies_ns
        if self.received < self.sent or len(latencies) == 0:
            return False
        tenth = max(1, len(latencies) // 10)
        head = float(np.mean(latencies[:tenth]))
        tail = float(np.mean(latencies[-tenth:]))
        return tail <= GROWTH_FACTOR * head + GROWTH_FLOOR_MS * 1e6

    def percentile_ms(self, percent: float) -> float:
        return float(np.percentile(self.latencies_ns, percent)) / 1e6


def measure(adapter: core.Adapter, rate: int, seconds: float, value_bytes: int,
            output: str, warmup_s: float = WARMUP_S) -> LatencyRun:
    """One run: a fresh stream or queue, the consumer process, then the paced sends
    (``warmup_s`` of them not counted)."""
    adapter.start_latency()
    warmup = int(rate * warmup_s)
    total = warmup + max(1, int(rate * seconds))
    max_s = warmup_s + seconds + DRAIN_S + 5.0
    command = [sys.executable, "-m", "peers.latency", json.dumps(adapter.receiver()),
               str(total), output, str(max_s)]
    child = subprocess.Popen(command, cwd=BENCH_DIR, stdout=subprocess.PIPE, text=True,
                             preexec_fn=servers.die_with_parent)
    try:
        line = child.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"latency consumer did not start: {line!r} "
                               f"(exit status {child.wait(STARTUP_TIMEOUT_S)})")
        adapter.send_paced(rate, total, value_bytes)
        if child.wait(max_s + STARTUP_TIMEOUT_S) != 0:
            raise RuntimeError(f"latency consumer exited with {child.returncode}")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    latencies = np.load(output)
    os.unlink(output)
    return LatencyRun(rate, total, len(latencies), latencies[warmup:])


def _receiver(system: str) -> Callable[..., list[int]]:
    module, name = RECEIVERS[system]
    return getattr(importlib.import_module(module), name)


def main(argv: list[str]) -> None:
    """The consumer process: SPEC (JSON) COUNT OUTPUT MAX_S."""
    spec, count, output, max_s = json.loads(argv[0]), int(argv[1]), argv[2], float(argv[3])
    receive = _receiver(spec["system"])
    latencies = receive(spec, count, max_s, lambda: print("ready", flush=True))
    np.save(output, np.asarray(latencies, dtype=np.int64))


if __name__ == "__main__":
    main(sys.argv[1:])
