"""A simulated disk for tests: what survives a power loss, and injected I/O errors.

The log runs on a real directory (the page cache). :class:`SimDisk` watches the
sync seam of ``mqlog.logstore._files`` (every fsync, fdatasync and msync of the
storage and consumer layers passes it) and records, at each sync, what became
durable: a file's content and size, or a directory's entries. It also watches
``os.unlink``/``rmdir``/``rename``/``replace`` so that a reused inode number is
never taken for the file that had it before.

:meth:`SimDisk.crash` builds the disk image a machine would find after

* a power loss (``keep_page_cache=False``): each file is its last synced
  content plus an arbitrary, seeded-random subset of the pages written since,
  one of them possibly torn at any byte (at a sector boundary with
  ``torn_unit``), and either its synced or its current
  size; each directory entry created, renamed or unlinked since the
  directory's last fsync may revert (a created file or directory may vanish,
  an unlinked one may come back with its synced content, a rename may revert
  to the file it replaced); and the boot id changes;
* a process crash, kill -9 (``keep_page_cache=True``): the image is the
  directory as it is, the boot id stays.

The image replaces the directory, which then counts as durable whole.

Failing syncs model Linux after a failed writeback ("fsyncgate"): the pages the
failed sync should have written are dropped from the disk's point of view --
a later sync that succeeds does not write them again -- while the page cache
still serves them.

Not modelled: the order in which the kernel writes pages back (any subset may
land); ENOSPC or EIO on a write through a memory map (a real kernel raises
SIGBUS: the code under test must reserve blocks first).
"""

from __future__ import annotations

import dataclasses
import importlib
import mmap
import os
import pkgutil
import random
import re
import shutil
import stat
import sys
import threading
from collections.abc import Callable

import numpy as np

from mqlog.logstore import _files, _state

PAGE_BYTES = 4096
#: Random parts of names (uuid4 hex): masked where a name seeds a random choice.
_RANDOM_NAME_PART = re.compile(r"[0-9a-f]{32}")
#: Seam functions of ``mqlog.logstore._files`` the simulator replaces, in every
#: ``mqlog`` module that holds them by name.
SYNC_SEAMS = ("fsync_file", "fdatasync_file", "sync_map", "fsync_directory",
              "sync_file_system")


@dataclasses.dataclass
class FaultPlan:
    """Errors to inject: ``decide(kind, path)`` is asked at each sync or write of a
    file under the root (kind "fsync", "fdatasync", "msync", "syncfs" (asked for
    each file a syncfs covers) or "write": any of
    ``os.pwritev``, ``os.pwrite``, ``os.write``) and returns an errno to raise
    instead of doing it, or None; ``injected`` counts what was raised, by kind."""

    decide: Callable[[str, str], int | None] = lambda kind, path: None
    injected: dict[str, int] = dataclasses.field(default_factory=dict)

    def check(self, kind: str, path: str) -> None:
        code = self.decide(kind, path)
        if code is not None:
            self.injected[kind] = self.injected.get(kind, 0) + 1
            raise OSError(code, f"{os.strerror(code)} (injected)", path)


@dataclasses.dataclass
class CrashStats:
    """What one crash image dropped, for the curious (the tests check the log)."""

    files: int = 0
    pages_lost: int = 0
    pages_torn: int = 0
    entries_reverted: int = 0


class SimDisk:
    """The durable state of the files under ``root`` as the sync seam reports it."""

    def __init__(self, root: str, rng: random.Random, faults: FaultPlan | None = None,
                 torn_unit: int = 1) -> None:
        self.root = os.path.abspath(root)
        #: A torn page keeps its new content up to a multiple of this many bytes:
        #: 1 (any byte, the default) or a sector size (a drive that writes
        #: sectors whole on power loss, as drives promise).
        self.torn_unit = torn_unit
        #: Seeds every choice of a crash image: per file, from its path, so that
        #: what the image keeps does not depend on the order of random names.
        self.seed = rng.randrange(2**64)
        self.rng = rng
        self.crashes = 0
        self.faults = faults or FaultPlan()
        self._lock = threading.RLock()
        self._next_uid = 0
        self._uid_of: dict[tuple[int, int], int] = {}
        #: uid of a file -> its content (and so its size) last made durable.
        self._content: dict[int, bytes] = {}
        #: uid -> the content a failed sync should have written: those pages
        #: never reach the disk unless written again.
        self._dropped: dict[int, bytes] = {}
        #: uid -> errno of a failed syncfs that hit the file: Linux reports it
        #: again to the next fsync or fdatasync of any open file of it.
        self._unreported: dict[int, int] = {}
        #: uid of a directory -> {name: uid} as last made durable.
        self._listing: dict[int, dict[str, int]] = {}
        self._is_dir: dict[int, bool] = {}
        self.syncs = 0
        self._patches: list[tuple[object, str, object]] = []
        self._real_sync_file_system: Callable = _files.sync_file_system
        self.boot_id = _state.current_boot_id()
        self.enabled = True

    # -- installing -------------------------------------------------------------------

    def install(self) -> None:
        """Replace the seams (undo with :meth:`uninstall`) in every module of
        mqlog, imported first: a module imported later would bind the
        replacements by name and keep them after :meth:`uninstall`."""
        import mqlog

        for module in pkgutil.walk_packages(mqlog.__path__, "mqlog."):
            importlib.import_module(module.name)
        replacements = {
            "fsync_file": self._fsync_file, "fdatasync_file": self._fdatasync_file,
            "sync_map": self._sync_map, "fsync_directory": self._fsync_directory,
            "sync_file_system": self._sync_file_system,
        }
        originals = {name: getattr(_files, name) for name in SYNC_SEAMS}
        self._real_sync_file_system = originals["sync_file_system"]
        boot_id = _state.current_boot_id
        for module in [m for name, m in sys.modules.items()
                       if name == "mqlog" or name.startswith("mqlog.")]:
            for name, original in originals.items():
                if module is not _files and getattr(module, name, None) is original:
                    self._patch(module, name, replacements[name])
            if getattr(module, "current_boot_id", None) is boot_id:
                self._patch(module, "current_boot_id", lambda: self.boot_id)
        for name, replacement in replacements.items():
            self._patch(_files, name, replacement)
        for name in ("unlink", "remove", "rmdir"):
            self._patch(os, name, self._forgetting(getattr(os, name)))
        for name in ("rename", "replace"):
            self._patch(os, name, self._renaming(getattr(os, name)))
        for name in ("pwritev", "pwrite", "write"):
            self._patch(os, name, self._writing(getattr(os, name)))

    def _patch(self, owner: object, name: str, value: object) -> None:
        self._patches.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    def uninstall(self) -> None:
        for owner, name, value in reversed(self._patches):
            setattr(owner, name, value)
        self._patches.clear()

    # -- identities -------------------------------------------------------------------

    def _uid(self, st: os.stat_result) -> int:
        key = (st.st_dev, st.st_ino)
        uid = self._uid_of.get(key)
        if uid is None:
            uid = self._uid_of[key] = self._next_uid
            self._next_uid += 1
            self._is_dir[uid] = stat.S_ISDIR(st.st_mode)
        return uid

    def _retire(self, path, dir_fd=None) -> None:
        """``path`` is about to lose its name: if that is its last link, its inode
        number may be reused, so forget which uid it stood for."""
        try:
            st = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
        except (OSError, TypeError, ValueError):
            return
        if stat.S_ISDIR(st.st_mode) or st.st_nlink <= 1:
            self._uid_of.pop((st.st_dev, st.st_ino), None)

    def _forgetting(self, real: Callable) -> Callable:
        def forget(path, *args, dir_fd=None, **kwargs):
            with self._lock:
                self._retire(path, dir_fd)
                return real(path, *args, dir_fd=dir_fd, **kwargs)
        return forget

    def _renaming(self, real: Callable) -> Callable:
        def rename(src, dst, *args, **kwargs):
            with self._lock:
                try:  # the source keeps its identity under the new name
                    if os.stat(src, dir_fd=kwargs.get("src_dir_fd")).st_ino != os.stat(
                            dst, dir_fd=kwargs.get("dst_dir_fd")).st_ino:
                        self._retire(dst, kwargs.get("dst_dir_fd"))
                except (OSError, TypeError, ValueError):
                    pass
                try:
                    self._uid(os.stat(src, dir_fd=kwargs.get("src_dir_fd"),
                                      follow_symlinks=False))
                except (OSError, TypeError, ValueError):
                    pass
                return real(src, dst, *args, **kwargs)
        return rename

    def _writing(self, real: Callable) -> Callable:
        def write(fd, *args):
            if self.enabled and fd > 2:
                path = _fd_path(fd)
                if path.startswith(self.root):
                    self.faults.check("write", path)
            return real(fd, *args)
        return write

    # -- the seam ---------------------------------------------------------------------

    def _fsync_file(self, fd: int) -> None:
        self._sync(fd, "fsync", os.fsync)

    def _fdatasync_file(self, fd: int) -> None:
        self._sync(fd, "fdatasync", os.fdatasync)

    def _sync_map(self, mapping: mmap.mmap, fd: int) -> None:
        self._sync(fd, "msync", lambda _fd: mapping.flush())

    def _fsync_directory(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            self._sync(fd, "fsync", os.fsync)
        finally:
            os.close(fd)

    def _sync_file_system(self, fds) -> None:
        """One syncfs for ``fds``: every file under the root among them becomes
        durable, or, where the plan injects an error, loses its unsynced pages
        and keeps the error for its next fsync (what Linux's errseq does); the
        others then stay as they were (not known to be written)."""
        real = self._real_sync_file_system
        with self._lock:
            if not self.enabled:
                return real(fds)
            inside = [fd for fd in fds if _fd_path(fd).startswith(self.root)]
            failed: OSError | None = None
            for fd in inside:
                try:
                    self.faults.check("syncfs", _fd_path(fd))
                except OSError as error:
                    failed = failed or error
                    self._drop_unsynced(fd)
                    self._unreported[self._uid(os.fstat(fd))] = error.errno
            if failed is not None:
                raise failed
            real(fds)
            for fd in inside:
                self.syncs += 1
                self._record(fd)

    def _sync(self, fd: int, kind: str, real: Callable[[int], None]) -> None:
        with self._lock:
            if not self.enabled:
                return real(fd)
            path = _fd_path(fd)
            inside = path.startswith(self.root)
            try:
                if inside:
                    self.faults.check(kind, path)
                    code = self._unreported.pop(self._uid(os.fstat(fd)), None)
                    if code is not None:
                        raise OSError(code, f"{os.strerror(code)} (a failed syncfs)", path)
                real(fd)
            except OSError:
                if inside:
                    self._drop_unsynced(fd)
                raise
            if inside:
                self.syncs += 1
                self._record(fd)

    def _record(self, fd: int) -> None:
        st = os.fstat(fd)
        uid = self._uid(st)
        if stat.S_ISDIR(st.st_mode):
            self._listing[uid] = self._read_listing(fd)
        else:
            content = _read_fd(fd)
            dropped = self._dropped.get(uid)
            if dropped is not None:  # pages a failed sync lost stay lost
                content = _keep_dropped(content, self._content.get(uid, b""), dropped)
            self._content[uid] = content

    def _drop_unsynced(self, fd: int) -> None:
        st = os.fstat(fd)
        if not stat.S_ISDIR(st.st_mode):
            self._dropped[self._uid(st)] = _read_fd(fd)

    def _read_listing(self, fd: int) -> dict[str, int]:
        listing = {}
        for name in os.listdir(fd):
            try:
                listing[name] = self._uid(os.stat(name, dir_fd=fd, follow_symlinks=False))
            except FileNotFoundError:
                continue
        return listing

    def settle(self) -> None:
        """Everything under the root becomes durable as it is (the kernel wrote
        it all back: time passed, or the directory was just made from an image)."""
        with self._lock:
            self._dropped.clear()
            self._unreported.clear()
            for directory, _dirs, files in os.walk(self.root):
                fd = os.open(directory, os.O_RDONLY)
                try:
                    self._record(fd)
                finally:
                    os.close(fd)
                for name in files:
                    fd = os.open(os.path.join(directory, name), os.O_RDONLY)
                    try:
                        self._record(fd)
                    finally:
                        os.close(fd)

    # -- crashing ---------------------------------------------------------------------

    def crash(self, close: Callable[[], None], keep_page_cache: bool,
              vanish_share: float = 0.5) -> CrashStats:
        """Build the image a crash leaves (see the module), call ``close`` (the
        crashed process's handles go; what it does to the old files no longer
        matters), put the image in the root's place and treat it as durable."""
        stats = CrashStats()
        self.crashes += 1
        image = self.root + ".image"
        with self._lock:
            root_fd = os.open(self.root, os.O_RDONLY)
            try:
                root_uid = self._uid(os.fstat(root_fd))
            finally:
                os.close(root_fd)
            os.mkdir(image)
            self._build_dir(root_uid, self.root, image, keep_page_cache, vanish_share, stats)
            self.enabled = False
        try:
            close()
        finally:
            self.enabled = True
        with self._lock:
            shutil.rmtree(self.root)
            os.rename(image, self.root)
            self._uid_of.clear()
            self._content.clear()
            self._listing.clear()
            self._is_dir.clear()
            if not keep_page_cache:
                self.boot_id = self.rng.randbytes(16)
        self.settle()
        return stats

    def _build_dir(self, uid: int, real: str | None, image: str, keep: bool, vanish: float,
                   stats: CrashStats) -> None:
        current: dict[str, int] = {}
        if real is not None:
            fd = os.open(real, os.O_RDONLY)
            try:
                current = self._read_listing(fd)
            finally:
                os.close(fd)
        synced = self._listing.get(uid, {})
        for name in sorted(set(current) | set(synced)):
            now, before = current.get(name), synced.get(name)
            choice = now
            target = os.path.join(image, name)
            if not keep and now != before and self._rng_for(target).random() < vanish:
                choice = before
                stats.entries_reverted += 1
            if choice is None:
                continue
            alive = choice == now and real is not None
            source = os.path.join(real, name) if alive else None
            if self._is_dir.get(choice):
                os.mkdir(target)
                self._build_dir(choice, source, target, keep, vanish, stats)
            else:
                self._build_file(choice, source, target, keep, stats)

    def _build_file(self, uid: int, source: str | None, target: str, keep: bool,
                    stats: CrashStats) -> None:
        stats.files += 1
        durable = self._content.get(uid, b"")
        if source is None:
            content = durable
        else:
            with open(source, "rb") as handle:
                current = handle.read()
            content = current if keep else self._mix(
                durable, current, self._rng_for(target), self.torn_unit, stats)
        with open(target, "wb") as handle:
            handle.write(content)

    def _rng_for(self, image_path: str) -> random.Random:
        name = _RANDOM_NAME_PART.sub("*", os.path.relpath(image_path, self.root + ".image"))
        return random.Random(f"{self.seed}:{self.crashes}:{name}")

    @staticmethod
    def _mix(durable: bytes, current: bytes, rng: random.Random, torn_unit: int,
             stats: CrashStats) -> bytes:
        """``durable`` plus a random subset of the pages in which ``current``
        differs, one of them possibly torn (at a multiple of ``torn_unit``
        bytes); the size is either one's."""
        size = len(current) if rng.random() < 0.5 else len(durable)
        pages = -(-max(len(durable), len(current)) // PAGE_BYTES)
        old = np.zeros(pages * PAGE_BYTES, dtype=np.uint8)
        old[: len(durable)] = np.frombuffer(durable, dtype=np.uint8)
        new = np.zeros(pages * PAGE_BYTES, dtype=np.uint8)
        new[: len(current)] = np.frombuffer(current, dtype=np.uint8)
        out = old.copy()
        differing = np.flatnonzero((old != new).reshape(pages, PAGE_BYTES).any(axis=1))
        torn = int(rng.choice(differing)) if len(differing) and rng.random() < 0.5 \
            else -1
        for page in differing.tolist():
            span = slice(page * PAGE_BYTES, (page + 1) * PAGE_BYTES)
            if page == torn:
                cut = page * PAGE_BYTES + rng.randrange(PAGE_BYTES // torn_unit) * torn_unit
                out[page * PAGE_BYTES: cut] = new[page * PAGE_BYTES: cut]
                stats.pages_torn += 1
            elif rng.random() < 0.5:
                out[span] = new[span]
            else:
                stats.pages_lost += 1
        return out[:size].tobytes()


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def _read_fd(fd: int) -> bytes:
    """The whole content of the file open as ``fd`` (even if opened write-only)."""
    reader = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(reader, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(reader)


def _keep_dropped(content: bytes, durable: bytes, dropped: bytes) -> bytes:
    """``content`` where the pages still equal to what a failed sync dropped keep
    their ``durable`` bytes (the kernel marked them clean without writing them)."""
    out = bytearray(content)
    for start in range(0, min(len(content), len(dropped)), PAGE_BYTES):
        page = slice(start, start + PAGE_BYTES)
        if content[page] == dropped[page]:
            old = durable[page]
            out[page] = old + bytes(len(out[page]) - len(old))
    return bytes(out)

