"""The idempotent Producer on top of ProducerBatch: per-record sequence numbers,
retries of split appends after a full disk, and a new epoch once retries are spent."""

from __future__ import annotations

import errno
import os

import pytest

import mqlog
from mqlog.logstore import _format as fmt
from mqlog.logstore import _segment


def fail_segment_writes(monkeypatch: pytest.MonkeyPatch, calls: set[int]) -> None:
    """The segment writes numbered in ``calls`` (from 1) fail with ENOSPC."""
    real = os.pwritev
    count = [0]

    def pwritev(fd: int, buffers, position: int) -> int:
        count[0] += 1
        if count[0] in calls:
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        return real(fd, buffers, position)

    monkeypatch.setattr(_segment.os, "pwritev", pwritev)


def test_a_split_append_retried_after_a_full_disk_lands_once(tmp_path, monkeypatch):
    monkeypatch.setattr(fmt, "BATCH_BYTES_MAX", 400)  # 4 records of 60 bytes per batch
    values = [bytes([65 + i % 26]) * 60 for i in range(30)]  # 8 batches
    with mqlog.open(tmp_path / "log", durability="none") as log:
        log.create_topic("t")
        with log.producer(idempotent=True) as producer:
            fail_segment_writes(monkeypatch, {2})
            assert producer.send_many("t", values).result(10) == {0: range(0, 30)}
            assert producer.send_many("t", values).result(10) == {0: range(30, 60)}
            assert producer.epoch == 0
        assert [r.value for r in log.read("t", 0, 0, max_records=100)] == values + values


def test_spent_retries_move_the_producer_to_a_new_epoch(tmp_path, monkeypatch):
    with mqlog.open(tmp_path / "log", durability="none") as log:
        log.create_topic("t")
        with log.producer(idempotent=True, retries=1) as producer:
            producer.send("t", b"a", partition=0).result(10)
            fail_segment_writes(monkeypatch, set(range(1, 100)))  # a disk that stays full
            with pytest.raises(mqlog.DiskFullError):
                producer.send("t", b"b", partition=0).result(10)
            monkeypatch.undo()
            assert producer.epoch == 1  # sequences start again at 0
            assert producer.send("t", b"c", partition=0).result(10).offset == 1
        assert [r.value for r in log.read("t", 0, 0)] == [b"a", b"c"]
