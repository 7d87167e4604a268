"""create_topic creates a complete topic or leaves nothing: out of descriptors, out
of space at any step, or killed while building it."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mqlog
from mqlog.errors import TopicExistsError
from mqlog.logstore import _topic_files
from mqlog.logstore.verify import verify_log

REPO_ROOT = Path(__file__).resolve().parents[2]

#: In a child process: a 200-partition topic under a 64-descriptor limit, then a
#: topic whose first partition cannot even be opened (no topic; a staging directory
#: the next open removes, if removing it needed descriptors), then the same again.
_UNDER_RLIMIT = """
import errno, os, resource, sys
import mqlog
from mqlog.errors import TopicExistsError
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
log = mqlog.open(sys.argv[1])
described = log.create_topic("wide", 200)
assert len(described.partitions) == 200 and described.record_count == 0
log.append("wide", 199, [b"x"])
hoard = []
try:
    while True:
        hoard.append(os.open(os.devnull, os.O_RDONLY))
except OSError as error:
    assert error.errno == errno.EMFILE
for fd in hoard[-3:]:
    os.close(fd)
del hoard[-3:]
try:
    log.create_topic("starved", 3)
except OSError as error:
    assert error.errno == errno.EMFILE, error
    print("starved-failed", flush=True)
for fd in hoard:
    os.close(fd)
assert "starved" not in log.topics()
mqlog.open(sys.argv[1]).close()  # removes what rmtree could not without descriptors
assert not [n for n in os.listdir(os.path.join(sys.argv[1], "topics")) if n.startswith("~")]
log.create_topic("starved", 3)
try:
    log.create_topic("wide", 200)
except TopicExistsError:
    print("exists", flush=True)
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))  # the last close opens them all
log.close()
"""


def test_a_wide_topic_under_a_low_descriptor_limit(log_dir):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run([sys.executable, "-c", _UNDER_RLIMIT, str(log_dir)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["starved-failed", "exists"]
    report = verify_log(log_dir)
    assert report.problems == []
    with mqlog.open(log_dir) as log:
        assert log.topics() == ["starved", "wide"]
        assert log.describe_topic("wide").record_count == 1


class Failing:
    """Counts the steps of create_topic; raises ENOSPC at step ``fail_at`` (1-based)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_at: int | None) -> None:
        self.steps = 0
        self.fail_at = fail_at
        for owner, name in [(_topic_files, "write_metadata"), (_topic_files, "Partition"),
                            (_topic_files, "fsync_directory"), (_topic_files.os, "rename"),
                            (_topic_files.os, "makedirs")]:
            monkeypatch.setattr(owner, name, self.wrap(getattr(owner, name)))

    def wrap(self, function):
        def step(*args, **kwargs):
            self.steps += 1
            if self.steps == self.fail_at:
                raise OSError(errno.ENOSPC, "No space left on device (injected)")
            return function(*args, **kwargs)
        return step


def create(log: mqlog.Log) -> mqlog.TopicDescription:
    return log.create_topic("t", 3, segment_bytes=4096)


def test_every_step_of_create_topic_can_fail_and_leave_nothing(tmp_path, monkeypatch):
    with mqlog.open(tmp_path / "count") as log, monkeypatch.context() as patch:
        counting = Failing(patch, None)
        expected = create(log)
    total = counting.steps
    assert total >= 10
    for fail_at in range(1, total + 1):
        log_dir = tmp_path / str(fail_at)
        with mqlog.open(log_dir) as log:
            with monkeypatch.context() as patch:
                Failing(patch, fail_at)
                with pytest.raises(OSError, match="injected"):
                    create(log)
            assert os.listdir(log_dir / "topics") == [], fail_at
            assert "t" not in log.topics()
            assert create(log) == expected
        assert verify_log(log_dir).problems == []


def test_a_topic_that_raised_is_not_there_and_one_that_returned_is(log_dir, monkeypatch):
    with mqlog.open(log_dir) as log:
        log.create_topic("t")
        with pytest.raises(TopicExistsError):
            log.create_topic("t")


def test_a_creator_killed_midway_leaves_a_directory_that_open_removes(log_dir):
    script = (
        "import os, signal, sys, mqlog\n"
        "from mqlog.logstore import _topic_files\n"
        "real = _topic_files.initialize_partition\n"
        "def init(directory, topic, number, config, clock):\n"
        "    if number == 5:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return real(directory, topic, number, config, clock)\n"
        "_topic_files.initialize_partition = init\n"
        "mqlog.open(sys.argv[1]).create_topic('t', 10)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run([sys.executable, "-c", script, str(log_dir)], env=env,
                            capture_output=True, timeout=60)
    assert result.returncode == -9
    [staging] = os.listdir(log_dir / "topics")
    assert staging.startswith("~creating-")
    with mqlog.open(log_dir) as log:
        assert os.listdir(log_dir / "topics") == []
        assert log.topics() == []
        log.create_topic("t", 10)
    assert verify_log(log_dir).problems == []
