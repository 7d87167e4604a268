"""mqlog's types work for its users: a program using the public API type-checks.

mypy checks a small user program against mqlog as a user has it installed: found
through the interpreter's path, as a package marked ``py.typed`` (without the
marker mypy would refuse to read it). It runs in strict mode, so a public
function without annotations fails the test too (``disallow_untyped_calls``).
A second program misuses the API, to prove that mqlog's types are really read
(an unannotated or unread mqlog would let it pass); the first one is also run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mqlog

pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[dev]')")

#: A user's program: every call and attribute below is public API.
PROGRAM = '''
from __future__ import annotations

import sys

import mqlog
from mqlog import (
    GroupDescription,
    Message,
    RecordColumns,
    RecordMetadata,
    TopicDescription,
    TopicPartition,
)
from mqlog.monitor import LagSample, sample_lag, sample_topics, topic_stats


def main(path: str) -> int:
    with mqlog.open(path, durability="none") as log:
        topic: TopicDescription = log.create_topic("orders", partitions=2)
        with log.producer() as producer:
            sent: RecordMetadata = producer.send("orders", b"one", key="customer-7").result(5)
            producer.send("orders", "two", partition=sent.partition)
        consumer = log.consumer("billing", ["orders"], auto_offset_reset="earliest")
        messages: list[Message] = consumer.poll(timeout=5.0)
        while len(messages) < 2:
            messages += consumer.poll(timeout=5.0)
        for message in messages:
            key: bytes | None = message.key
            print(message.topic, message.partition, message.offset, key, message.value)
            consumer.commit({TopicPartition(message.topic, message.partition):
                             message.offset + 1})
        consumer.close()
        group: GroupDescription = log.describe_group("billing")
        lag: int = group.total_lag
        ages = [p.oldest_unconsumed_age_ms for p in group.partitions if p.member_id is None]
        columns: RecordColumns = log.read_columns("orders", sent.partition, 0)
        values: list[bytes] = columns.values()
        first_offset = int(columns.offsets[0])
        sample: LagSample = sample_lag(log)  # the Log is a monitor.LogView
        stats = topic_stats(sample_topics(log, ["orders"]))
        print(topic.name, group.state, lag, ages, values, first_offset,
              [g.total_lag for g in sample.groups], [s.records for s in stats])
        return len(messages)


if __name__ == "__main__":
    sys.exit(0 if main(sys.argv[1]) == 2 else 1)
'''

#: Misuses, one a line; each must be reported on its own line.
MISUSES = '''
import mqlog

log = mqlog.open("data")
log.create_topic(7)
log.consumer("g").poll(timeout="soon")
offset: str = log.describe_group("g").partitions[0].end_offset
log.read_columns("t", 0, 0).next_offset + 1
'''


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Type-check both programs in one mypy run (it takes a few seconds):
    (their directory, mypy's output)."""
    directory = tmp_path_factory.mktemp("typing")
    (directory / "program.py").write_text(PROGRAM)
    (directory / "misuses.py").write_text(MISUSES)
    (directory / "mypy.ini").write_text(textwrap.dedent("""\
        [mypy]
        strict = True
        python_version = 3.10
        """))
    # The tree whose mqlog the tests import goes first on the interpreter's
    # path, where mypy looks for installed packages (PEP 561).
    tree = Path(mqlog.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--cache-dir",
         str(directory / ".mypy_cache"), "program.py", "misuses.py"],
        cwd=directory, env=env, capture_output=True, text=True, timeout=600,
    )
    return directory, result.stdout + result.stderr


def test_mqlog_is_a_typed_package() -> None:
    assert (Path(mqlog.__file__).parent / "py.typed").is_file()


def test_a_user_program_type_checks_in_strict_mode(checked: tuple[Path, str]) -> None:
    _directory, output = checked
    assert "py.typed" not in output  # found as an installed, typed package
    assert [line for line in output.splitlines() if line.startswith("program.py")] == []


def test_misuses_of_the_api_are_reported(checked: tuple[Path, str]) -> None:
    _directory, output = checked
    lines = {int(match.group(1)) for match in re.finditer(r"^misuses\.py:(\d+): error",
                                                          output, re.MULTILINE)}
    assert lines == {5, 6, 7, 8}, output


def test_the_program_runs(checked: tuple[Path, str]) -> None:
    directory, _output = checked
    tree = Path(mqlog.__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "program.py", str(directory / "log")], cwd=directory,
        env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
