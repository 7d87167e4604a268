"""How to keep mapped writes from faulting on a full disk: reserve, or pwrite?

Not one of the ``make bench`` figures: the measurement behind the choice in
``mqlog/logstore/_space.py``. A store through a shared map into a page with no
blocks behind it is a SIGBUS on a full disk; either the file's blocks are
reserved up front (``posix_fallocate``) and the map keeps being written, or the
writes go through ``pwrite`` instead of the map. For each file mqlog maps and
writes, this times both ways on the directory given (default: a temporary
directory, so the file system under it):

* index files (default topic config: 32,770 offset entries of 8 B and 32,771
  time entries of 16 B per segment): creating them (ftruncate vs fallocate),
  then storing one entry per index interval: through the map of a sparse file,
  through the map of a reserved file, or with ``os.pwrite``;
* the partition state file (256 B, one 128 B slot written per append): map
  vs ``os.pwrite``;
* a queue share-state file (64 B + 65,536 x 32 B entries): creating it.

Prints one JSON line per figure (ns per operation, or us per file created).
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import struct
import tempfile
import time

import numpy as np

OFFSET_ENTRIES = 32_770
TIME_ENTRIES = 32_771
INDEX_BYTES = OFFSET_ENTRIES * 8 + TIME_ENTRIES * 16
SHARE_BYTES = 64 + 65_536 * 32
ENTRY = np.dtype([("relative_offset", "<u4"), ("position", "<u4")])


def emit(metric: str, value: float, unit: str, **extra) -> None:
    print(json.dumps({"bench": "reserve_vs_pwrite", "metric": metric,
                      "value": round(value, 2), "unit": unit, **extra}), flush=True)


def create_files(directory: str, count: int, size: int, reserve: bool) -> float:
    """Create ``count`` files of ``size`` bytes; microseconds per file."""
    started = time.perf_counter()
    for number in range(count):
        fd = os.open(os.path.join(directory, f"{'r' if reserve else 's'}{number}"),
                     os.O_RDWR | os.O_CREAT, 0o644)
        if reserve:
            os.posix_fallocate(fd, 0, size)
        else:
            os.ftruncate(fd, size)
        os.close(fd)
    return (time.perf_counter() - started) / count * 1e6


def index_entries_by_map(path: str, reserve: bool) -> float:
    """Store every offset-index entry of one segment through the map; ns each."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    size = OFFSET_ENTRIES * ENTRY.itemsize
    if reserve:
        os.posix_fallocate(fd, 0, size)
    else:
        os.ftruncate(fd, size)
    entries = np.frombuffer(mmap.mmap(fd, size), dtype=ENTRY)
    os.close(fd)
    started = time.perf_counter()
    for slot in range(OFFSET_ENTRIES):
        entries[slot] = (slot * 40, slot * 4096)
    return (time.perf_counter() - started) / OFFSET_ENTRIES * 1e9


def index_entries_by_pwrite(path: str) -> float:
    """Store every offset-index entry of one segment with pwrite; ns each."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(fd, OFFSET_ENTRIES * ENTRY.itemsize)
    pack = struct.Struct("<II").pack
    started = time.perf_counter()
    for slot in range(OFFSET_ENTRIES):
        os.pwrite(fd, pack(slot * 40, slot * 4096), slot * 8)
    elapsed = time.perf_counter() - started
    os.close(fd)
    return elapsed / OFFSET_ENTRIES * 1e9


def state_publishes(path: str, publishes: int) -> tuple[float, float]:
    """ns per 128-byte slot write: through the (reserved) map, and with pwrite."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.posix_fallocate(fd, 0, 256)
    state_map = mmap.mmap(fd, 256)
    slot = bytes(range(128))
    started = time.perf_counter()
    for number in range(publishes):
        start = (number % 2) * 128
        state_map[start : start + 128] = slot
    by_map = (time.perf_counter() - started) / publishes * 1e9
    started = time.perf_counter()
    for number in range(publishes):
        os.pwrite(fd, slot, (number % 2) * 128)
    by_pwrite = (time.perf_counter() - started) / publishes * 1e9
    state_map.close()
    os.close(fd)
    return by_map, by_pwrite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", help="where to create the files (default: a temp dir)")
    parser.add_argument("--files", type=int, default=50, help="files created per way")
    parser.add_argument("--publishes", type=int, default=200_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=options.dir) as directory:
        for reserve in (False, True):
            way = "fallocate" if reserve else "ftruncate"
            emit(f"create_index_files_{way}_us", create_files(directory, options.files,
                                                              INDEX_BYTES, reserve), "us/file")
            emit(f"create_share_state_{way}_us", create_files(directory, options.files,
                                                              SHARE_BYTES, reserve), "us/file")
        emit("index_entry_map_sparse_ns",
             index_entries_by_map(os.path.join(directory, "sparse.index"), False), "ns/entry")
        emit("index_entry_map_reserved_ns",
             index_entries_by_map(os.path.join(directory, "reserved.index"), True), "ns/entry")
        emit("index_entry_pwrite_ns",
             index_entries_by_pwrite(os.path.join(directory, "pwrite.index")), "ns/entry")
        by_map, by_pwrite = state_publishes(os.path.join(directory, "state"),
                                            options.publishes)
        emit("state_slot_map_ns", by_map, "ns/publish")
        emit("state_slot_pwrite_ns", by_pwrite, "ns/publish")


if __name__ == "__main__":
    main()
