"""Tables keep every number, id and time whole, piped and at an 80-column terminal;
a closed pipe stops commands and examples quietly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import mqlog

from ._cli import MQLOG

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOPIC = "jobs-with-a-rather-long-topic-name"
GROUP = "workers-with-a-long-group-name"
#: What the tables must show whole.
TIME_PREFIX = "20"  # every printed time is ISO 8601 UTC: 20YY-...Z


def mqlog_output(*args: str | os.PathLike, terminal: bool) -> str:
    """stdout of ``mqlog ARGS`` piped, or as at an 80-column terminal."""
    env = {**os.environ, "COLUMNS": "80", "TTY_COMPATIBLE": "1" if terminal else "0",
           "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    result = subprocess.run([MQLOG, *map(os.fspath, args)], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode in (0, 1), result.stderr
    return re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)  # styles (bold headings) dropped


@pytest.fixture
def busy(log_dir: Path) -> Path:
    """10,002 jobs, two dead-lettered by queue group GROUP, ten held by a consumer
    group member, in a topic with a long name."""
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic(TOPIC)
        log.append(TOPIC, 0, [b"job"] * 10_002)
        with log.queue(GROUP, [TOPIC], max_deliveries=1) as queue:
            for message in queue.receive(2):
                message.nack(delay_s=0, reason="the handler raised a rather long message")
            assert len(queue.receive(3)) == 3
        with log.consumer("billing", topics=[TOPIC], auto_offset_reset="earliest") as consumer:
            consumer.poll(timeout=5.0, max_records=10)
            consumer.commit()
    return log_dir


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "80-columns"])
def test_tables_never_cut_numbers_ids_or_times(busy: Path, terminal: bool) -> None:
    outputs = {
        "queues": mqlog_output("-d", busy, "queues", "describe", GROUP, terminal=terminal),
        "stats": mqlog_output("-d", busy, "stats", "--interval", "0", terminal=terminal),
        "dlq": mqlog_output("-d", busy, "dlq", "list", f"{TOPIC}.dlq", terminal=terminal),
        "lag": mqlog_output("-d", busy, "lag", terminal=terminal),
    }
    for name, text in outputs.items():
        assert "…" not in text and "..." not in text, (name, text)
        words = text.split()
        assert TOPIC in words or f"{TOPIC}/0@0" in words, (name, text)
    assert "10,000" in outputs["queues"].split()
    assert "10,002" in outputs["stats"].split()
    times = [word for word in outputs["dlq"].split() if word.startswith(TIME_PREFIX)]
    assert len(times) == 2 and all(len(t) == len("2026-11-22T19:20:18.260Z") for t in times)
    assert "billing" in outputs["lag"] and "9,992" in outputs["lag"].split()


def test_piped_tables_are_plain_aligned_columns(busy: Path) -> None:
    lines = mqlog_output("-d", busy, "stats", "--interval", "0", terminal=False).splitlines()
    assert lines[0] == "mqlog stats"
    header, row = lines[1], lines[2]
    assert header.split()[:3] == ["TOPIC", "PARTITIONS", "RECORDS"]
    assert row.split()[:3] == [TOPIC, "1", "10,002"]
    # right-aligned numbers end under their heading
    assert row.index("10,002") + len("10,002") == header.index("RECORDS") + len("RECORDS")
    assert not any(character in "".join(lines) for character in "┃│━─")


def test_a_terminal_table_fits_80_columns_when_it_can(log_dir: Path) -> None:
    with mqlog.open(log_dir) as log:
        log.create_topic("orders")
        log.append("orders", 0, [b"x"] * 10_000)
    text = mqlog_output("-d", log_dir, "stats", "--interval", "0", terminal=True)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "10,000" in text and "│" in text


def read_one_line_then_close(command: list[str | os.PathLike]) -> tuple[int, bytes]:
    """Run ``command``, read one line of its stdout, close it: (exit status, stderr)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read()
    process.stderr.close()
    return process.wait(timeout=30), stderr


@pytest.fixture
def long_topic(log_dir: Path) -> Path:
    """Topic ``orders``: 20,000 records of 50 bytes, more than a pipe holds as text."""
    with mqlog.open(log_dir) as log:
        log.create_topic("orders")
        log.append("orders", 0, [b"y" * 50] * 20_000)
    return log_dir


def test_commands_exit_141_quietly_on_a_closed_pipe(long_topic: Path) -> None:
    segment = next((long_topic / "topics" / "orders" / "0").glob("*.log"))
    for args in (["tail", "orders", "-n", "20000", "--json"], ["dump", segment, "--records"]):
        status, stderr = read_one_line_then_close([MQLOG, "-d", long_topic, *args])
        assert (status, stderr) == (141, b""), args


def test_examples_exit_quietly_on_a_closed_pipe(long_topic: Path) -> None:
    command = [sys.executable, EXAMPLES / "replay_window.py", long_topic, "orders",
               "--start", "1d"]
    status, stderr = read_one_line_then_close(command)
    assert (status, stderr) == (-signal.SIGPIPE, b"")  # the shell shows 141
