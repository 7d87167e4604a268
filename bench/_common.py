"""Shared helpers of the benchmark scripts: arguments, timing, JSON output,
temporary log directories and a description of the machine.

Every script prints one JSON object per line on stdout, one per figure, with at
least the keys ``bench``, ``metric``, ``value``, ``unit``, ``records``,
``python`` and ``machine``; a figure with a target also carries ``target_min``
or ``target_max``. Progress notes go to stderr so stdout stays machine-readable.

Log directories are created under ``$MQLOG_BENCH_DIR`` (default: the system
temporary directory) and deleted afterwards. Point it at the disk you care
about: the fsync figures mean nothing on a RAM disk.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

#: Size of every record value in the suite, as the figures are specified.
VALUE_BYTES = 100
#: Topic name used by every benchmark.
TOPIC = "bench"
#: On-disk sizes from the batch layout (mqlog/logstore/_format.py).
BATCH_HEADER_BYTES = 48
RECORD_ROW_BYTES = 20


def arguments(doc: str, records: Sequence[int], quick: Sequence[int], repeat: int | None = None,
              extra: Callable[[argparse.ArgumentParser], None] | None = None
              ) -> argparse.Namespace:
    """Parse ``--records`` (one or more sizes), ``--quick``, ``--repeat`` when
    ``repeat`` is given, and whatever ``extra`` adds to the parser. ``--quick``
    picks the ``quick`` sizes and one run unless ``--records``/``--repeat`` say
    otherwise."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sizes = " ".join(str(n) for n in records)
    parser.add_argument("--records", type=int, nargs="+" if len(records) > 1 else None,
                        help=f"records to write (default: {sizes})")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    if repeat is not None:
        parser.add_argument("--repeat", type=int,
                            help=f"runs to take the median of (default: {repeat})")
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    if args.records is None:
        chosen = list(quick if args.quick else records)
        args.records = chosen if len(records) > 1 else chosen[0]
    if repeat is not None and args.repeat is None:
        args.repeat = 1 if args.quick else repeat
    return args


def progress(message: str) -> None:
    """A note for the person watching (stderr, so stdout stays JSON lines)."""
    print(message, file=sys.stderr, flush=True)


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """Time a block: the yielded list holds the elapsed seconds once the block ends."""
    elapsed: list[float] = []
    start = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed.append(time.perf_counter() - start)


def percentile_us(samples_ns: Sequence[int], percent: float) -> float:
    """The ``percent`` percentile of nanosecond samples, in microseconds."""
    return float(np.percentile(np.asarray(samples_ns, dtype=np.int64), percent)) / 1000.0


def paced(send: Callable[[], object], rate: int, records: int) -> None:
    """Call ``send`` ``records`` times at ``rate`` per second."""
    interval_ns = 1_000_000_000 / rate
    start = time.monotonic_ns()
    sent = 0
    while sent < records:
        due = min(int((time.monotonic_ns() - start) / interval_ns) + 1, records)
        while sent < due:
            send()
            sent += 1
        wait_ns = start + sent * interval_ns - time.monotonic_ns()
        if wait_ns > 0:
            time.sleep(wait_ns / 1e9)


def median(values: Sequence[float]) -> float:
    """The median run: robust to one run disturbed by other work on the machine."""
    return float(np.median(np.asarray(values, dtype=np.float64)))


def batch_bytes(records: int) -> int:
    """Size on disk of one batch of ``records`` plain values: what the raw-I/O
    baselines write to compare mqlog with the bare system calls."""
    return BATCH_HEADER_BYTES + records * (RECORD_ROW_BYTES + VALUE_BYTES)


def payloads(count: int) -> list[bytes]:
    """``count`` distinct random values of VALUE_BYTES bytes."""
    blob = os.urandom(count * VALUE_BYTES)
    return [blob[i : i + VALUE_BYTES] for i in range(0, len(blob), VALUE_BYTES)]


@contextmanager
def temporary_log_dir(label: str) -> Iterator[str]:
    """A fresh directory for one log, removed (with everything in it) afterwards."""
    path = tempfile.mkdtemp(prefix=f"mqlog-bench-{label}-",
                            dir=os.environ.get("MQLOG_BENCH_DIR"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def sync_files(path: str) -> None:
    """fdatasync every file under ``path``, so that the kernel's writeback of
    what was just written does not compete with the measurement that follows."""
    for directory, _subdirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fdatasync(fd)
            finally:
                os.close(fd)


def disk_usage(path: str) -> tuple[int, int]:
    """(apparent bytes, allocated bytes) of every file under ``path``."""
    apparent = allocated = 0
    for directory, _subdirs, files in os.walk(path):
        for name in files:
            info = os.stat(os.path.join(directory, name))
            apparent += info.st_size
            allocated += info.st_blocks * 512
    return apparent, allocated


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _filesystem(path: str) -> str:
    """File system type and device holding ``path`` (longest mount-point match)."""
    best, found = "", "unknown fs"
    try:
        with open("/proc/self/mounts") as handle:
            for line in handle:
                device, mount_point, fs_type = line.split()[:3]
                inside = path == mount_point or path.startswith(mount_point.rstrip("/") + "/")
                if inside and len(mount_point) >= len(best):
                    best, found = mount_point, f"{fs_type} on {device}"
    except OSError:
        pass
    return found


def machine() -> str:
    """One line naming the CPU, core count, kernel and the disk the logs go to."""
    log_root = os.path.realpath(os.environ.get("MQLOG_BENCH_DIR") or tempfile.gettempdir())
    return (f"{_cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()} "
            f"{platform.machine()}, {_filesystem(log_root)}")


_MACHINE = machine()


def _significant(value: float) -> float | int:
    """Four significant digits: more would be noise on any benchmark machine."""
    if isinstance(value, int):
        return value
    rounded = float(f"{value:.4g}")
    return int(rounded) if rounded.is_integer() and abs(rounded) >= 1000 else rounded


def emit(bench: str, metric: str, value: float, unit: str, *, records: int,
         target_min: float | None = None, target_max: float | None = None,
         **parameters: object) -> None:
    """Print one figure as a JSON line on stdout."""
    figure: dict[str, object] = {
        "bench": bench, "metric": metric, "value": _significant(value), "unit": unit,
        "records": records,
    }
    if target_min is not None:
        figure["target_min"] = target_min
    if target_max is not None:
        figure["target_max"] = target_max
    figure.update(parameters)
    figure["python"] = platform.python_version()
    figure["machine"] = _MACHINE
    print(json.dumps(figure), flush=True)
