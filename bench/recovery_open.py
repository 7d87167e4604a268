"""Figure 4: open and recover a partition after its writer was killed with SIGKILL.

Workload: a child process (this script with ``--child``) opens a fresh log,
appends ``--records`` records (default 10,000,000) of 100 random bytes to one
partition (durability="none") in calls of 100,000 records, reports that on its
stdout, then keeps appending calls of 1,000 records in a tight loop. About 0.2 s
later the parent kills it with SIGKILL (``kill -9``), so the writer dies while
appending: its preallocated active segment, its indexes and the partition
state are left as they were.

Timed, in the parent (which had not opened the log before): ``mqlog.open``, the
first ``end_offset`` of the partition (this opens the partition, which is where
recovery runs: the newest segment is re-verified from its last index entry up
to the published end and anything past it is cut), a ``Log.read`` of the last
record and a ``Log.append`` of one record. The data is in the page cache and the
machine was not rebooted, which is the case recovery after a process crash sees.

Figure: seconds from ``mqlog.open`` to the first append returning (target <= 0.5 s).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import _common

import mqlog

BENCH = "recovery_open"
WRITE_BATCH = 100_000
TAIL_BATCH = 1_000
#: How long the child keeps appending before it is killed.
KILL_AFTER_S = 0.2
TARGET_SECONDS = 0.5


def child(path: str, records: int) -> None:
    """Write ``records`` records, say so, then append until killed."""
    values = _common.payloads(WRITE_BATCH)
    log = mqlog.open(path)
    log.create_topic(_common.TOPIC, durability="none")
    for start in range(0, records, WRITE_BATCH):
        log.append(_common.TOPIC, 0, values[: min(WRITE_BATCH, records - start)])
    print("written", flush=True)
    tail = values[:TAIL_BATCH]
    while True:
        log.append(_common.TOPIC, 0, tail)


def write_and_kill(path: str, records: int) -> None:
    """Run the writer child and SIGKILL it while it is appending."""
    writer = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--child", path, str(records)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        line = writer.stdout.readline()
        if line.strip() != "written":
            raise RuntimeError(f"writer stopped before writing its records: {line!r}")
        time.sleep(KILL_AFTER_S)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
    if writer.returncode != -signal.SIGKILL:
        raise RuntimeError(f"writer exited with {writer.returncode}, not by SIGKILL")


def timed_recovery(path: str, value: bytes) -> tuple[float, int]:
    """Seconds from open to the first append returning, and the recovered end offset."""
    start = time.perf_counter()
    log = mqlog.open(path)
    try:
        end = log.end_offset(_common.TOPIC, 0)
        last = log.read(_common.TOPIC, 0, end - 1, max_records=1)
        log.append(_common.TOPIC, 0, [value])
        seconds = time.perf_counter() - start
    finally:
        log.close()
    assert last[0].offset == end - 1
    return seconds, end


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]))
        return
    args = _common.arguments(__doc__, records=[10_000_000], quick=[20_000])
    with _common.temporary_log_dir(BENCH) as path:
        _common.progress(f"{BENCH}: writing {args.records} records, then SIGKILL")
        write_and_kill(path, args.records)
        seconds, end = timed_recovery(path, _common.payloads(1)[0])
    _common.emit(BENCH, "recovery_open_seconds", seconds, "s", target_max=TARGET_SECONDS,
                 records=args.records, batch=WRITE_BATCH, durability="none",
                 value_bytes=_common.VALUE_BYTES, recovered_end_offset=end)


if __name__ == "__main__":
    main()
