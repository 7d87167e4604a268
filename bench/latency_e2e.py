"""Figure 8: end-to-end latency, ``Producer.send`` to the record coming out of ``poll``.

Workload, once with the consumer in the same process (a thread) and once in
another process (this script with ``--child``, started with ``subprocess``):
a fresh log with one topic of one partition (durability="none"). The consumer
is the only member of a new group (``auto_offset_reset="earliest"``, default
settings) and loops on ``poll(timeout=0.1)``; it has joined and polled once
before the producer starts. The producer (default settings, ``linger_ms=0``) runs
in the main thread and sends 100-byte values at a fixed rate of ``--rate``
records/s (default 10,000): a 0.2 s warm-up, then ``--records`` records
(default 50,000, 5 s at the default rate; ``--quick``: 10,000, 1 s). Pacing:
it sleeps until the next record is due, then sends every record that is due
(a late wake-up sends a short burst; the average rate holds).

Each value starts with ``time.monotonic_ns()`` (CLOCK_MONOTONIC, one clock for
every process on Linux) read just before its ``send``; the consumer reads the
clock once when ``poll`` returns and takes the difference for every record of
that poll. Warm-up records are not counted.

For scale, the same paced stamps (8 bytes each) are also passed through a plain
``os.pipe`` to a thread and to a process blocked in ``os.read``, without
mqlog: the hand-off latency the machine's scheduler leaves, which no log can
beat.

Figures per placement: p50, p99 and p99.9 latency in ms (targets: p99 <= 0.2 ms
in the same process, <= 1 ms in another process), and the same percentiles of
the pipe hand-off.
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import _common
import numpy as np

import mqlog

BENCH = "latency_e2e"
RATE = 10_000
WARMUP_S = 0.2
POLL_TIMEOUT_S = 0.1
GROUP = "latency"
PLACEMENTS = ("same_process", "other_process")
TARGET_P99_MS = {"same_process": 0.2, "other_process": 1.0}
PERCENTILES = {"p50": 50.0, "p99": 99.0, "p999": 99.9}
#: How long to wait for a consumer to join, or to finish after the last send.
STARTUP_TIMEOUT_S = 60.0
_STAMP = struct.Struct("<Q")

Receiver = Callable[[Callable[[], object]], np.ndarray]


# -- receivers: each calls on_ready once it can receive, returns latencies (ns) ---------


def consume(log: mqlog.Log, records: int, on_ready: Callable[[], object]) -> np.ndarray:
    """Join the group, then receive ``records`` stamped records from ``poll``."""
    consumer = log.consumer(GROUP, auto_offset_reset="earliest")
    consumer.subscribe([_common.TOPIC])
    consumer.poll()
    on_ready()
    latencies = np.empty(records, dtype=np.int64)
    seen = 0
    unpack = _STAMP.unpack_from
    while seen < records:
        messages = consumer.poll(timeout=POLL_TIMEOUT_S)
        now = time.monotonic_ns()
        for message in messages:
            latencies[seen] = now - unpack(message.value)[0]
            seen += 1
    consumer.close()
    return latencies


def read_stamps(fd: int, records: int, on_ready: Callable[[], object]) -> np.ndarray:
    """Receive ``records`` stamps from a pipe with blocking ``os.read``."""
    on_ready()
    latencies = np.empty(records, dtype=np.int64)
    seen = 0
    pending = b""
    while seen < records:
        chunk = os.read(fd, 65536)
        now = time.monotonic_ns()
        if not chunk:
            raise EOFError(f"pipe closed after {seen} of {records} stamps")
        pending += chunk
        whole = len(pending) - len(pending) % _STAMP.size
        for (stamp,) in _STAMP.iter_unpack(pending[:whole]):
            latencies[seen] = now - stamp
            seen += 1
        pending = pending[whole:]
    return latencies


# -- placements ----------------------------------------------------------------------------


def in_thread(receive: Receiver, send: Callable[[], object], rate: int,
              records: int) -> np.ndarray:
    """Run ``receive`` in a thread of this process while sending from this one."""
    result: list[np.ndarray] = []
    ready = threading.Event()
    receiver = threading.Thread(target=lambda: result.append(receive(ready.set)),
                                name="receiver")
    receiver.start()
    if not ready.wait(STARTUP_TIMEOUT_S):
        raise RuntimeError("the receiving thread did not get ready")
    _common.paced(send, rate, records)
    receiver.join(STARTUP_TIMEOUT_S)
    if not result:
        raise RuntimeError("the receiving thread failed")
    return result[0]


def in_child(role: str, argument: str, send: Callable[[], object], rate: int, records: int,
             output: str, stdin: int | None = None) -> np.ndarray:
    """Run this script as ``--child role`` while sending from this process; the
    child saves its latencies to ``output``."""
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--child", role, argument, str(records),
         output], stdin=stdin, stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"the {role} process did not get ready: {line!r}")
        _common.paced(send, rate, records)
        if child.wait(STARTUP_TIMEOUT_S) != 0:
            raise RuntimeError(f"the {role} process exited with {child.returncode}")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    return np.load(output)


def mqlog_latencies(placement: str, rate: int, records: int) -> np.ndarray:
    """Latencies of ``records`` records through a fresh log."""
    padding = os.urandom(_common.VALUE_BYTES - _STAMP.size)
    with _common.temporary_log_dir(BENCH) as path, mqlog.open(path) as log:
        log.create_topic(_common.TOPIC, durability="none")
        with log.producer() as producer:

            def send() -> None:
                producer.send(_common.TOPIC, _STAMP.pack(time.monotonic_ns()) + padding)

            if placement == "same_process":
                latencies = in_thread(lambda ready: consume(log, records, ready), send, rate,
                                      records)
            else:
                latencies = in_child("consumer", path, send, rate, records,
                                     os.path.join(path, "latencies.npy"))
    return latencies


def pipe_latencies(placement: str, rate: int, records: int) -> np.ndarray:
    """Latencies of ``records`` stamps through an ``os.pipe``."""
    read_fd, write_fd = os.pipe()

    def send() -> None:
        os.write(write_fd, _STAMP.pack(time.monotonic_ns()))

    try:
        if placement == "same_process":
            return in_thread(lambda ready: read_stamps(read_fd, records, ready), send, rate,
                             records)
        with _common.temporary_log_dir(f"{BENCH}-pipe") as path:
            return in_child("pipe", "-", send, rate, records,
                            os.path.join(path, "latencies.npy"), stdin=read_fd)
    finally:
        os.close(read_fd)
        os.close(write_fd)


def say_ready() -> None:
    """Tell the parent (reading our stdout) that this process can receive."""
    print("ready", flush=True)


def child(role: str, argument: str, records: int, output: str) -> None:
    """A receiving process: print ``ready`` when it can receive, save the latencies."""
    if role == "consumer":
        with mqlog.open(argument, create=False) as log:
            latencies = consume(log, records, say_ready)
    else:
        latencies = read_stamps(sys.stdin.fileno(), records, say_ready)
    np.save(output, latencies)


# -- figures -------------------------------------------------------------------------------


def options(parser: argparse.ArgumentParser) -> None:
    """The script's own option: the send rate."""
    parser.add_argument("--rate", type=int, default=RATE,
                        help=f"records sent per second (default {RATE:,})")


def emit_percentiles(prefix: str, latencies: np.ndarray, target: float | None,
                     **workload: object) -> None:
    """p50, p99 (with ``target``) and p99.9 of ``latencies`` (ns), in ms."""
    for name, percent in PERCENTILES.items():
        _common.emit(BENCH, f"{prefix}_{name}_ms",
                     _common.percentile_us(latencies, percent) / 1000, "ms",
                     target_max=target if name == "p99" else None, records=len(latencies),
                     **workload)


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return
    args = _common.arguments(__doc__, records=[50_000], quick=[10_000], extra=options)
    warmup = int(args.rate * WARMUP_S)
    for placement in PLACEMENTS:
        _common.progress(f"{BENCH}: {placement}, {args.records} records at {args.rate}/s")
        latencies = mqlog_latencies(placement, args.rate, warmup + args.records)[warmup:]
        emit_percentiles(placement, latencies, TARGET_P99_MS[placement], rate=args.rate,
                         value_bytes=_common.VALUE_BYTES, durability="none")
        latencies = pipe_latencies(placement, args.rate, warmup + args.records)[warmup:]
        emit_percentiles(f"{placement}_pipe", latencies, None, rate=args.rate,
                         value_bytes=_STAMP.size)


if __name__ == "__main__":
    main()
