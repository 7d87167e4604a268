"""The simulated disk itself: it keeps what was synced, may drop what was not,
reverts unsynced directory entries, changes the boot id, and routes every sync.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

import mqlog
from mqlog.logstore import _files, _recovery, _segment, _state
from tests.faults._simdisk import PAGE_BYTES, FaultPlan, SimDisk


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "disk"
    path.mkdir()
    return path


def _disk(root: Path, seed: int = 0, faults: FaultPlan | None = None) -> SimDisk:
    disk = SimDisk(str(root), random.Random(seed), faults)
    disk.install()
    return disk


def _write(path: Path, data: bytes, sync: bool) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, data, 0)
        if sync:
            _files.fdatasync_file(fd)
    finally:
        os.close(fd)


def test_synced_content_survives_and_unsynced_pages_may_go(root: Path) -> None:
    disk = _disk(root)
    try:
        disk.settle()
        synced, unsynced = root / "synced", root / "unsynced"
        _write(synced, b"a" * (3 * PAGE_BYTES), sync=True)
        _write(unsynced, b"b" * (3 * PAGE_BYTES), sync=False)
        _files.fsync_directory(str(root))
        outcomes = set()
        for _ in range(8):
            _write(unsynced, b"", sync=True)
            os.truncate(unsynced, 0)
            _write(unsynced, b"", sync=True)  # durable: empty
            _write(unsynced, b"b" * (3 * PAGE_BYTES), sync=False)
            disk.crash(lambda: None, keep_page_cache=False)
            assert synced.read_bytes() == b"a" * (3 * PAGE_BYTES)
            outcomes.add(unsynced.read_bytes())
        assert len(outcomes) > 1, "a power loss never dropped an unsynced page"
    finally:
        disk.uninstall()


def test_kill9_keeps_the_page_cache_and_the_boot(root: Path) -> None:
    disk = _disk(root)
    try:
        disk.settle()
        boot = _state.current_boot_id()
        _write(root / "file", b"unsynced", sync=False)
        disk.crash(lambda: None, keep_page_cache=True)
        assert (root / "file").read_bytes() == b"unsynced"
        assert _state.current_boot_id() == boot
        disk.crash(lambda: None, keep_page_cache=False)
        assert _recovery.current_boot_id() != boot  # the alias in _recovery too
    finally:
        disk.uninstall()
    assert _recovery.current_boot_id() == _state.BOOT_ID


def test_an_entry_created_without_a_directory_fsync_may_vanish(root: Path) -> None:
    disk = _disk(root)
    try:
        disk.settle()
        kept = vanished = 0
        for _ in range(12):
            _write(root / "new", b"x", sync=True)  # the file, not its directory entry
            disk.crash(lambda: None, keep_page_cache=False)
            if (root / "new").exists():
                kept += 1
                os.unlink(root / "new")
                _files.fsync_directory(str(root))
            else:
                vanished += 1
        assert kept and vanished
    finally:
        disk.uninstall()


def test_a_rename_over_a_file_may_revert_until_the_directory_is_synced(root: Path) -> None:
    disk = _disk(root)
    try:
        _write(root / "meta", b"old", sync=True)
        disk.settle()
        seen = set()
        for _ in range(12):
            _write(root / "meta.tmp", b"new", sync=True)
            os.replace(root / "meta.tmp", root / "meta")
            disk.crash(lambda: None, keep_page_cache=False)
            seen.add((root / "meta").read_bytes())
            _write(root / "meta", b"old", sync=True)
            _files.fsync_directory(str(root))
        assert seen == {b"old", b"new"}
        _write(root / "meta.tmp", b"new", sync=True)
        os.replace(root / "meta.tmp", root / "meta")
        _files.fsync_directory(str(root))
        disk.crash(lambda: None, keep_page_cache=False)
        assert (root / "meta").read_bytes() == b"new"
    finally:
        disk.uninstall()


def test_an_injected_error_is_raised_from_the_seam(root: Path) -> None:
    import errno

    disk = _disk(root, faults=FaultPlan(lambda kind, path: errno.EIO
                                        if kind == "fdatasync" else None))
    try:
        with pytest.raises(OSError) as caught:
            _write(root / "file", b"x", sync=True)
        assert caught.value.errno == errno.EIO
        assert disk.faults.injected == {"fdatasync": 1}
    finally:
        disk.uninstall()


def test_every_sync_of_an_always_append_passes_the_seam(root: Path, monkeypatch) -> None:
    """The storage layer calls no fsync/fdatasync of its own (they would escape the
    simulation): with the seam installed, os.fsync and os.fdatasync are only called
    from the simulated disk."""
    calls = []
    for name in ("fsync", "fdatasync"):
        real = getattr(os, name)

        def spy(fd, _real=real, _name=name):
            calls.append(_name)
            return _real(fd)
        monkeypatch.setattr(os, name, spy)
    disk = _disk(root)
    try:
        with mqlog.open(root / "log") as log:
            log.create_topic("t", durability="always", segment_bytes=4096)
            for _ in range(10):
                log.append("t", 0, [b"v" * 1000])
            log.flush()
        assert disk.syncs == len(calls) > 10
    finally:
        disk.uninstall()
    assert _segment.fdatasync_file is _files.fdatasync_file
