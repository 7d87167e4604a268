"""Concurrent appends to one partition from several processes and threads.

Every append call's records carry (writer, call, index, count) in their value
(``_children.tagged_value``), and every writer reports the first offset each call
returned. Afterwards each record must be at exactly ``first offset of its call +
its index``: so every record is present exactly once, the offsets are dense, each
writer's calls follow its own order and no other writer's record lands inside a
call's batch. A reader process polling the tail meanwhile must never meet a
CorruptRecordError, a record out of order, or a read ending inside a call.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import mqlog

from . import _children
from ._children import parse_tagged, tagged_call, writer_ids

TOPIC = "shared"
SEED = 424242
CALLS = int(os.environ.get("MQLOG_CONCURRENT_CALLS", "150"))
CHILD_TIMEOUT_S = 120.0


def _create(path: str, **topic_config) -> None:
    with mqlog.open(path) as log:
        log.create_topic(TOPIC, **topic_config)


def _expected_total(firsts: dict[int, list[int]]) -> int:
    return sum(len(tagged_call(writer_id, call, SEED))
               for writer_id, offsets in firsts.items() for call in range(len(offsets)))


def check_log(path: str, firsts: dict[int, list[int]]) -> None:
    """Each record sits at its call's first offset + its index; nothing else is there."""
    total = _expected_total(firsts)
    with mqlog.open(path) as log:
        assert log.end_offset(TOPIC, 0) == total
        records = log.read(TOPIC, 0, 0, max_records=total + 1)
    assert [r.offset for r in records] == list(range(total))
    for writer_id, offsets in firsts.items():
        assert offsets == sorted(offsets), f"writer {writer_id}'s calls out of order"
    for record in records:
        writer_id, call, index, count = parse_tagged(record.value)
        assert count == len(tagged_call(writer_id, call, SEED))
        assert record.offset == firsts[writer_id][call] + index, (
            f"record {index} of writer {writer_id} call {call} at offset {record.offset}, "
            f"its call starts at {firsts[writer_id][call]}")


def _finish(child, name: str) -> str:
    """The child's last stdout line, after checking it exited cleanly (its output is
    a few KiB at most, so waiting before reading cannot fill a pipe)."""
    child.wait(timeout=CHILD_TIMEOUT_S)
    out, err = child.stdout.read(), child.stderr.read()
    assert child.returncode == 0, f"{name} failed ({child.returncode}):\n{err}"
    return out.strip().splitlines()[-1]


def run_writers(path: str, processes: int, threads: int,
                with_reader: bool = False) -> dict[int, list[int]]:
    """Start the writer processes (and a tail reader), release them together, and
    return every writer id's first offsets. Fails if the reader saw anything wrong."""
    writers = [_children.start("writer", path, TOPIC, number, threads, CALLS, SEED, stdin=True)
               for number in range(processes)]
    ids = [i for number in range(processes) for i in writer_ids(number, threads)]
    total = sum(len(tagged_call(i, call, SEED)) for i in ids for call in range(CALLS))
    reader = _children.start("reader", path, TOPIC, total, CHILD_TIMEOUT_S) if with_reader else None
    try:
        for child in writers + ([reader] if reader else []):
            assert child.stdout.readline() == "ready\n"
        for child in writers:
            child.stdin.write("go\n")
            child.stdin.close()
        firsts: dict[int, list[int]] = {}
        for number, child in enumerate(writers):
            reported = json.loads(_finish(child, f"writer {number}"))
            firsts.update({int(k): v for k, v in reported.items()})
        if reader is not None:
            seen = json.loads(_finish(reader, "reader"))
            assert (seen["error"], seen["read"]) == (None, total), seen
    finally:
        for child in writers + ([reader] if reader else []):
            if child.poll() is None:
                child.kill()
                child.wait()
    assert sorted(firsts) == sorted(ids)
    return firsts


@pytest.mark.parametrize(
    ("processes", "segment_bytes"),
    [(2, 128 * 1024 * 1024), (4, 128 * 1024 * 1024), (4, 16384)],
    ids=["2-processes", "4-processes", "4-processes-rolling"],
)
def test_processes_append_concurrently(tmp_path: Path, processes: int,
                                       segment_bytes: int) -> None:
    path = str(tmp_path / "log")
    _create(path, segment_bytes=segment_bytes, index_interval_bytes=1024)
    check_log(path, run_writers(path, processes, threads=1))


def test_threads_of_one_process_append_concurrently(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    _create(path, index_interval_bytes=1024)
    with mqlog.open(path) as log:
        firsts = _children.append_from_threads(log, TOPIC, 0, 4, CALLS, SEED)
    check_log(path, firsts)


def test_processes_and_threads_append_concurrently_with_durability_always(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "log")
    _create(path, durability="always", segment_bytes=65536, index_interval_bytes=1024)
    check_log(path, run_writers(path, processes=2, threads=2))


@pytest.mark.parametrize("durability", ["none", "always"])
def test_tail_reader_never_sees_a_partial_batch(tmp_path: Path, durability: str) -> None:
    path = str(tmp_path / "log")
    _create(path, durability=durability, segment_bytes=32768, index_interval_bytes=512)
    check_log(path, run_writers(path, processes=2, threads=1, with_reader=True))
