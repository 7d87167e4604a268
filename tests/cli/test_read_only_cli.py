"""The reading commands on a log this user may not write, and never running retention.

The log of ``tests/logstore/_read_only_log`` (segments whose retention is long
due by the wall clock, a compacted topic, a consumer group, a queue group with
dead letters) is read by every reading command three ways:

* writable: the commands apply no retention (every segment is still there);
* on real read-only media: a read-only bind mount (needs root and mount);
* as another user: the log belongs to root, the commands run as ``nobody``
  (with ``setpriv``), or, when the tests do not run as root, the directory is
  made read-only with chmod;

and on the last two the directory must be unchanged to the byte and the mtime.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import FakeClock
from tests.logstore._read_only_log import build, tree

from ._cli import run

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Every reading command, with arguments that make it read something of everything.
READING = {
    "topics list": ["topics", "list", "--json"],
    "topics describe": ["topics", "describe", "events", "--json"],
    "stats": ["stats", "--interval", "0", "--internal", "--json"],
    "tail": ["tail", "events", "--from-beginning", "--format", "json"],
    "lag": ["lag", "--json"],
    "metrics": ["metrics"],
    "groups list": ["groups", "list", "--json"],
    "groups describe": ["groups", "describe", "g", "--json"],
    "queues describe": ["queues", "describe", "q", "--json"],
    "dlq list": ["dlq", "list", "jobs.dlq", "--json"],
    "dlq show": ["dlq", "show", "jobs.dlq", "0", "--json"],
    "verify": ["verify", "--json"],
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("read-only-cli") / "log"
    build(path, FakeClock())  # records of 2023: retention is long due by the wall clock
    return path


def segments(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.glob("topics/*/*/*.log"))


@pytest.mark.parametrize("args", READING.values(), ids=READING.keys())
def test_reading_commands_never_apply_retention(template: Path, tmp_path: Path,
                                                args: list[str]) -> None:
    log = tmp_path / "log"
    shutil.copytree(template, log)
    before = segments(log)
    result = run(CliRunner(), "-d", log, *args)
    assert result.exit_code == 0, result.stderr
    assert segments(log) == before


def test_a_writing_command_applies_retention_so_the_check_above_can_fail(
        template: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    shutil.copytree(template, log)
    before = segments(log)
    result = run(CliRunner(), "-d", log, "produce", "events", input="x\n")
    assert result.exit_code == 0, result.stderr
    assert len(segments(log)) < len(before)


# -- read-only media ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def read_only_mount(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the template seen through a read-only bind mount."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a read-only bind mount needs root and mount(8)")
    base = tmp_path_factory.mktemp("ro-mount")
    source, target = base / "source", base / "mounted"
    shutil.copytree(template, source)
    target.mkdir()
    bound = subprocess.run(["mount", "--bind", source, target], capture_output=True, text=True)
    if bound.returncode != 0:
        pytest.skip(f"mount --bind is not permitted here: {bound.stderr.strip()}")
    try:
        remounted = subprocess.run(["mount", "-o", "remount,ro,bind", target],
                                   capture_output=True, text=True)
        if remounted.returncode != 0:
            pytest.skip(f"remounting read-only is not permitted: {remounted.stderr.strip()}")
        yield target
    finally:
        subprocess.run(["umount", target], check=True)


@pytest.mark.parametrize("args", READING.values(), ids=READING.keys())
def test_reading_commands_work_on_read_only_media(read_only_mount: Path, template: Path,
                                                  args: list[str]) -> None:
    before = tree(read_only_mount)
    result = run(CliRunner(), "-d", read_only_mount, *args)
    assert result.exit_code == 0, result.stderr
    assert tree(read_only_mount) == before
    # (not the commands that print times "now", which differ from one run to the next)
    if args[0] not in ("stats", "lag", "metrics", "groups", "queues", "verify"):
        assert result.stdout == run(CliRunner(), "-d", template, *args).stdout


def test_a_writing_command_on_read_only_media_fails_clearly(read_only_mount: Path) -> None:
    result = run(CliRunner(), "-d", read_only_mount, "produce", "events", input="x\n")
    assert result.exit_code == 4
    assert "Read-only file system" in result.stderr


# -- another user's log ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def foreign_log(template: Path) -> Iterator[tuple[Path, list[str]]]:
    """A copy of the template this test's commands may read but not write, and the
    command prefix that runs them: as ``nobody`` when running as root, else as this
    user with every directory of the copy made read-only."""
    base = Path(tempfile.mkdtemp(prefix="mqlog-foreign-"))
    base.chmod(0o755)  # others may enter (tmp_path's parents are private)
    log = base / "log"
    shutil.copytree(template, log)
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as another user needs setpriv(1)")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        made_read_only: list[Path] = []
    else:
        prefix = []
        made_read_only = [Path(d) for d, _dirs, _files in os.walk(log)]
        for directory in made_read_only:
            directory.chmod(0o555)
    try:
        yield log, prefix
    finally:
        for directory in made_read_only:
            directory.chmod(0o755)
        shutil.rmtree(base)


def _as_other_user(prefix: list[str], *args: str | os.PathLike) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), HOME="/tmp")
    return subprocess.run(
        [*prefix, sys.executable, "-c", "from mqlog.cli import main; main()",
         *map(os.fspath, args)],
        capture_output=True, text=True, env=env, cwd="/", timeout=120)


def test_reading_commands_read_another_users_log(foreign_log: tuple[Path, list[str]]) -> None:
    log, prefix = foreign_log
    before = tree(log)
    for name, args in READING.items():
        result = _as_other_user(prefix, "-d", log, *args)
        assert result.returncode == 0, f"{name}: {result.stderr}"
    assert tree(log) == before
    denied = _as_other_user(prefix, "-d", log, "topics", "create", "mine")
    assert denied.returncode == 4 and "Permission denied" in denied.stderr, denied.stderr
    assert tree(log) == before
