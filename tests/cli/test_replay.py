"""mqlog replay, mqlog stats and mqlog topics alter through CliRunner (and one replay
as a real process, for its signals)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mqlog
from mqlog import Record
from mqlog.cli import _stats
from mqlog.cli._records import record_json

from ._cli import ctrl_c_after, json_lines, run
from ._helpers import BATCH_BYTES, KEYED_RECORD, START_MS, TOPIC, value


def all_records(path: Path, topic: str) -> list[tuple[int, Record]]:
    with mqlog.open(path) as log:
        return [(p.partition, r) for p in log.describe_topic(topic).partitions
                for r in log.iter(topic, p.partition)]


# -- replay -----------------------------------------------------------------------------------


def test_replay_to_a_new_topic_keeps_keys_headers_and_partitions(runner: CliRunner,
                                                                 built: Path) -> None:
    result = run(runner, "-d", built, "replay", TOPIC, "--from-offset", "145", "--to-topic",
                 "copy", "--json")
    assert result.exit_code == 0, result.stderr
    (summary,) = json_lines(result.stdout)
    assert summary.pop("seconds") >= 0
    assert summary == {"type": "replay", "topic": TOPIC, "partitions": [0, 1], "records": 5,
                       "offsets": 5, "interrupted": False, "destination": "copy"}
    assert f"created topic 'copy' in {built} with 2 partitions" in result.stderr
    copied = all_records(built, "copy")
    assert [(p, r.offset, r.key, r.value) for p, r in copied] == [
        (0, n - 145, None, value(n)) for n in range(145, 150)]
    assert dict(copied[0][1].headers) == {"mqlog.timestamp": b"%d" % (START_MS + 29),
                                          "mqlog.origin": f"{TOPIC}/0/145".encode()}
    with mqlog.open(built) as log:
        assert log.describe_topic("copy").config == log.describe_topic(TOPIC).config


def test_replay_a_time_window_into_another_directory(runner: CliRunner, built: Path,
                                                     tmp_path: Path) -> None:
    other = tmp_path / "other"
    result = run(runner, "-d", built, "replay", TOPIC, "--at", "2023-11-14T22:13:20.028Z",
                 "--until", "2023-11-14T22:13:20.031Z", "--to-topic", "window", "--to-dir",
                 other)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"replayed 11 records of '{TOPIC}' (partitions 0, 1) to "
                                    f"'window' in ")
    copied = all_records(other, "window")
    assert [(p, r.value) for p, r in copied] == [(0, value(n)) for n in range(140, 150)] + [
        (1, b"hello")]
    assert copied[-1][1].key == b"k1"
    assert dict(copied[-1][1].headers) == {"h": b"v", "mqlog.timestamp": b"%d" % (START_MS + 30),
                                           "mqlog.origin": f"{TOPIC}/1/0".encode()}


def test_replay_by_key_into_a_topic_with_other_partition_count(runner: CliRunner,
                                                               built: Path) -> None:
    with mqlog.open(built) as log:
        log.create_topic("wide", partitions=5)
    result = run(runner, "-d", built, "replay", TOPIC, "-p", "1", "--from-offset", "0",
                 "--to-topic", "wide")
    assert result.exit_code == 0, result.stderr
    from mqlog.producer import key_partition

    assert [(p, r.key) for p, r in all_records(built, "wide")] == [
        (key_partition(b"k1", 5), b"k1")]


def test_replay_since_until_offset_exec(runner: CliRunner, log_dir: Path, tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    with mqlog.open(log_dir) as log:
        log.create_topic("events")
        log.append("events", 0, [Record(b"%d" % minutes, timestamp=now - minutes * 60_000)
                                 for minutes in (120, 50, 40, 30, 20)])
    out = tmp_path / "out.jsonl"
    result = run(runner, "-d", log_dir, "replay", "events", "--since", "1h", "--until", "25m",
                 "--until-offset", "3", "--exec", f"cat > {out}")
    assert result.exit_code == 0, result.stderr
    assert "to 'cat > " in result.stdout
    with mqlog.open(log_dir) as log:
        expected = [record_json("events", 0, r) for r in log.read("events", 0, 1, 2)]
    assert [json.loads(line) for line in out.read_text().splitlines()] == expected


def test_replay_exec_failure_exits_1(runner: CliRunner, built: Path) -> None:
    result = run(runner, "-d", built, "replay", TOPIC, "--from-offset", "0", "-p", "1",
                 "--exec", "cat > /dev/null; exit 7")
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (
        1, "mqlog: error: command 'cat > /dev/null; exit 7' exited with code 7 after 1 records")


def test_replay_rate_limits(runner: CliRunner, built: Path) -> None:
    began = time.monotonic()
    result = run(runner, "-d", built, "replay", TOPIC, "-p", "0", "--from-offset", "130",
                 "--rate", "100/s", "--exec", "cat > /dev/null", "--json")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout)[0]["records"] == 20
    assert time.monotonic() - began >= 0.19


def test_replay_ctrl_c_stops_after_the_records_sent(runner: CliRunner, built: Path) -> None:
    helper = ctrl_c_after(0.5)
    try:
        result = run(runner, "-d", built, "replay", TOPIC, "--from-offset", "0", "--rate", "20",
                     "--to-topic", "slow", "--json")
    finally:
        helper.join()
    assert result.exit_code == 130
    (summary,) = json_lines(result.stdout)
    assert summary["interrupted"] is True and 0 <= summary["records"] < 151  # slow start: 0
    assert len(all_records(built, "slow")) == summary["records"]  # what was sent is there


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([TOPIC, "--to-topic", "x"], 2, "give exactly one of --from-offset, --since, --at"),
        ([TOPIC, "--from-offset", "0", "--since", "1h", "--to-topic", "x"], 2,
         "give exactly one of --from-offset, --since, --at"),
        ([TOPIC, "--from-offset", "0"], 2, "give exactly one of --to-topic, --exec"),
        ([TOPIC, "--from-offset", "0", "--to-topic", "x", "--exec", "cat"], 2,
         "give exactly one of --to-topic, --exec"),
        ([TOPIC, "--from-offset", "0", "--exec", "cat", "--to-dir", "/tmp"], 2,
         "--to-dir needs --to-topic"),
        ([TOPIC, "--from-offset", "0", "--to-topic", TOPIC], 2,
         f"cannot replay '{TOPIC}' into itself"),
        (["nope", "--from-offset", "0", "--to-topic", "x"], 3, "unknown topic 'nope'"),
        ([TOPIC, "-p", "2", "--from-offset", "0", "--to-topic", "x"], 3,
         f"topic '{TOPIC}' has no partition 2: it has partitions 0..1"),
        ([TOPIC, "-p", "1", "--from-offset", "2", "--to-topic", "x"], 3,
         f"offset 2 is out of range for {TOPIC}/1: valid offsets are 0..1"),
        ([TOPIC, "--since", "1y", "--to-topic", "x"], 2,
         "Invalid value for '--since': '1y' is not a duration: use a number and a unit (ms, s, "
         "m, h, d, w), e.g. 15m, 2h, 1d, 1h30m (see 'mqlog replay --help')"),
        ([TOPIC, "--at", "noon", "--to-topic", "x"], 2,
         "Invalid value for '--at': 'noon' is not an ISO 8601 date and time, e.g. "
         "2026-11-22T18:15:00, 2026-11-22 18:15:00+01:00 or 2026-11-22T17:15:00Z "
         "(see 'mqlog replay --help')"),
        ([TOPIC, "--since", "1h", "--until", "later", "--to-topic", "x"], 2,
         "Invalid value for '--until': 'later' is neither a duration (15m, 2h, 1d) nor an ISO "
         "8601 date and time (2026-11-22T18:15:00) (see 'mqlog replay --help')"),
        ([TOPIC, "--since", "1h", "--rate", "fast", "--to-topic", "x"], 2,
         "Invalid value for '--rate': 'fast' is not a rate: use records per second, e.g. 500 "
         "or 500/s (see 'mqlog replay --help')"),
    ],
)
def test_replay_errors(runner: CliRunner, built: Path, args: list[str], code: int,
                       message: str) -> None:
    result = run(runner, "-d", built, "replay", *args)
    assert (result.exit_code, result.stderr) == (code, f"mqlog: error: {message}\n")
    with mqlog.open(built) as log:
        assert log.topics() == [TOPIC]


# -- stats ------------------------------------------------------------------------------------


def test_stats_without_rates(runner: CliRunner, built: Path) -> None:
    result = run(runner, "-d", built, "stats", "--interval", "0", "--json")
    assert result.exit_code == 0, result.stderr
    (line,) = json_lines(result.stdout)
    assert abs(line.pop("oldest_record_age_ms") - (time.time() * 1000 - START_MS)) < 60_000
    assert line == {"topic": TOPIC, "partitions": 2, "records": 151,
                    "bytes": 30 * BATCH_BYTES + 81, "segments": 4, "in_per_s": None,
                    "out_per_s": None, "recoveries": 0}
    table = run(runner, "-d", built, "stats", "--interval", "0").stdout
    assert "151" in table and "OLDEST" in table


def test_stats_rates_of_appends_and_commits(runner: CliRunner, built: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Between its two samples (during its sleep) 50 records are appended and group g
    commits 100 more: the rates are those over the interval."""
    with mqlog.open(built) as log:
        log.reset_offsets("g", TOPIC, to="earliest")

    class Clock:
        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def sleep(seconds: float) -> None:
            with mqlog.open(built) as log:
                log.append(TOPIC, 1, [b"x"] * 50)
                log.reset_offsets("g", TOPIC, [0], to=100)
            time.sleep(seconds)

    monkeypatch.setattr(_stats, "time", Clock)
    result = run(runner, "-d", built, "stats", TOPIC, "--interval", "0.5", "--json")
    (line,) = json_lines(result.stdout)
    assert line["records"] == 201
    assert 50 / 5 < line["in_per_s"] <= 50 / 0.5
    assert 100 / 5 < line["out_per_s"] <= 100 / 0.5
    internal = json_lines(run(runner, "-d", built, "stats", "--internal", "--interval", "0",
                              "--json").stdout)
    assert [entry["topic"] for entry in internal] == ["__consumer_offsets", TOPIC]


def test_stats_unknown_topic(runner: CliRunner, built: Path) -> None:
    result = run(runner, "-d", built, "stats", "nope")
    assert (result.exit_code, result.stderr) == (3, "mqlog: error: unknown topic 'nope'\n")


# -- topics alter -----------------------------------------------------------------------------


def test_topics_alter(runner: CliRunner, built: Path) -> None:
    result = run(runner, "-d", built, "topics", "alter", TOPIC, "-p", "3", "--retention-ms",
                 "60000", "--cleanup-policy", "compact", "--json")
    assert result.exit_code == 0, result.stderr
    (document,) = json_lines(result.stdout)
    assert len(document["partitions"]) == 3
    assert (document["config"]["retention_ms"], document["config"]["cleanup_policy"]) == (
        60000, "compact")
    unlimited = run(runner, "-d", built, "topics", "alter", TOPIC, "--retention-ms", "-1")
    assert unlimited.stdout.splitlines()[0] == f"altered topic '{TOPIC}': 3 partitions"
    assert "retention_ms = None" in unlimited.stdout
    with mqlog.open(built) as log:
        assert log.read(TOPIC, 1, 0)[0] == Record(KEYED_RECORD.value, KEYED_RECORD.key,
                                                  KEYED_RECORD.headers, START_MS + 30, 0)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([TOPIC, "-p", "1"], 2, f"topic '{TOPIC}' has 2 partitions; the count can only grow"),
        ([TOPIC, "--segment-bytes", "100"], 2,
         "segment_bytes must be between 4096 and 2147483647, not 100"),
        ([TOPIC, "--cleanup-policy", "forever"], 2,
         "Invalid value for '--cleanup-policy': Value error, 'forever' is not one of 'delete', "
         "'compact'. (see 'mqlog topics alter --help')"),
        (["nope", "-p", "3"], 3, "unknown topic 'nope'"),
    ],
)
def test_topics_alter_errors(runner: CliRunner, built: Path, args: list[str], code: int,
                             message: str) -> None:
    result = run(runner, "-d", built, "topics", "alter", *args)
    assert (result.exit_code, result.stderr) == (code, f"mqlog: error: {message}\n")


def test_a_second_ctrl_c_stops_a_replay_whose_command_stopped_reading(tmp_path: Path) -> None:
    """The first Ctrl-C waits for the record being written (the command reads
    nothing: the pipe is full); the second stops the replay and its command."""
    directory = tmp_path / "log"
    with mqlog.open(directory) as log:
        log.create_topic("big")
        log.append("big", 0, [b"x" * 2048 for _ in range(300)])  # more than a pipe holds
    process = subprocess.Popen(
        [sys.executable, "-m", "mqlog.cli", "--dir", str(directory), "replay", "big",
         "--from-offset", "0", "--exec", "exec sleep 120"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        deadline = time.monotonic() + 30
        while not children.read_text().split():
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.05)
        (command,) = (int(pid) for pid in children.read_text().split())
        time.sleep(1.0)  # time to fill the pipe
        process.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert process.poll() is None  # the first Ctrl-C waits for the command to read
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()
    assert process.returncode in (130, -signal.SIGINT)
    with pytest.raises(ProcessLookupError):
        os.kill(command, 0)  # killed and reaped
