"""mqlog tail: starting points, formats, filters, errors; -f in this process and as a
real process following a log another process writes."""

from __future__ import annotations

import base64
import datetime
import signal
import statistics
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mqlog
from mqlog import Record

from . import _children
from ._cli import ctrl_c, finish, json_lines, run, start
from ._helpers import KEYED_RECORD, START_MS, TOPIC, value


def text_line(partition: int, offset: int, timestamp_ms: int, shown: str) -> str:
    stamp = datetime.datetime.fromtimestamp(timestamp_ms / 1000, datetime.UTC)
    return f"{partition}:{offset}  {stamp.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z  {shown}"


def p0_line(offset: int) -> str:
    return text_line(0, offset, START_MS + offset // 5, value(offset).decode())


P1_LINE = text_line(1, 0, START_MS + 30, "hello")


def test_tail_prints_the_last_10_records_merged_by_time(runner: CliRunner, built: Path) -> None:
    result = run(runner, "-d", built, "tail", TOPIC)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [p0_line(n) for n in range(141, 150)] + [P1_LINE]
    assert result.stderr == ""


def test_tail_lines_key_and_headers(runner: CliRunner, built: Path) -> None:
    result = run(runner, "-d", built, "tail", TOPIC, "-n", "2", "--key", "--headers")
    assert result.stdout.splitlines() == [
        text_line(0, 149, START_MS + 29, f"-  {value(149).decode()}  -"),
        text_line(1, 0, START_MS + 30, "k1  hello  h=v"),
    ]


def test_tail_one_partition_from_an_offset_as_json(runner: CliRunner, built: Path) -> None:
    result = run(runner, "-d", built, "tail", TOPIC, "-p", "0", "--offset", "147",
                 "--format", "json")
    assert json_lines(result.stdout) == [
        {"topic": TOPIC, "partition": 0, "offset": n, "timestamp": START_MS + 29, "key": None,
         "value": base64.b64encode(value(n)).decode(), "headers": {}}
        for n in (147, 148, 149)
    ]


def test_tail_from_beginning_merges_every_record(runner: CliRunner, built: Path) -> None:
    lines = run(runner, "-d", built, "tail", TOPIC, "--from-beginning").stdout.splitlines()
    assert lines == [p0_line(n) for n in range(150)] + [P1_LINE]


def test_tail_at_a_time_and_raw_values(runner: CliRunner, built: Path) -> None:
    at = "2023-11-14T22:13:20.028Z"  # START_MS + 28: batch 28 of partition 0 and on
    result = run(runner, "-d", built, "tail", TOPIC, "--at", at, "--format", "raw", "--key")
    assert result.stdout_bytes == b"".join(
        b"\t" + value(n) + b"\n" for n in range(140, 150)) + b"k1\thello\n"
    local = run(runner, "-d", built, "tail", TOPIC, "-p", "1", "--at", "2023-11-14", "--format",
                "raw")
    assert local.stdout_bytes == KEYED_RECORD.value + b"\n"


def test_tail_since_a_duration(runner: CliRunner, log_dir: Path) -> None:
    now = int(time.time() * 1000)
    with mqlog.open(log_dir) as log:
        log.create_topic("events")
        log.append("events", 0, [Record(b"%d min ago" % minutes, timestamp=now - minutes * 60_000)
                                 for minutes in (180, 90, 30, 1)])
    result = run(runner, "-d", log_dir, "tail", "events", "--since", "1h", "--format", "raw")
    assert result.stdout == "30 min ago\n1 min ago\n"
    result = run(runner, "-d", log_dir, "tail", "events", "--since", "1h45m", "--format", "raw")
    assert result.stdout == "90 min ago\n30 min ago\n1 min ago\n"


def test_tail_grep_filters_values_and_keys(runner: CliRunner, built: Path) -> None:
    result = run(runner, "-d", built, "tail", TOPIC, "-n", "20", "--grep", "0014[5-9]|^k1$")
    assert result.stdout.splitlines() == [p0_line(n) for n in range(145, 150)] + [P1_LINE]


def test_tail_without_starting_records(runner: CliRunner, built: Path) -> None:
    result = run(runner, "-d", built, "tail", TOPIC, "-n", "0")
    assert (result.exit_code, result.stdout) == (0, "")
    beyond = run(runner, "-d", built, "tail", TOPIC, "--offset", "500")  # no -p: clamped
    assert (beyond.exit_code, beyond.stdout) == (0, "")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["tail", "nope"], 3, "unknown topic 'nope'"),
        (["tail", TOPIC, "-p", "2"], 3,
         f"topic '{TOPIC}' has no partition 2: it has partitions 0..1"),
        (["tail", TOPIC, "-p", "0", "--offset", "151"], 3,
         f"offset 151 is out of range for {TOPIC}/0: valid offsets are 0..150"),
        (["tail", TOPIC, "--since", "15 minutes"], 2,
         "Invalid value for '--since': '15 minutes' is not a duration: use a number and a "
         "unit (ms, s, m, h, d, w), e.g. 15m, 2h, 1d, 1h30m (see 'mqlog tail --help')"),
        (["tail", TOPIC, "--at", "2023-13-01"], 2,
         "Invalid value for '--at': '2023-13-01' is not an ISO 8601 date and time, e.g. "
         "2026-11-22T18:15:00, 2026-11-22 18:15:00+01:00 or 2026-11-22T17:15:00Z "
         "(see 'mqlog tail --help')"),
        (["tail", TOPIC, "-n", "5", "--from-beginning"], 2,
         "choose one starting point, not --lines and --from-beginning"),
        (["tail", TOPIC, "--grep", "("], 2,
         "Invalid value for '--grep': bad regular expression '(': missing ), unterminated "
         "subpattern at position 0 (see 'mqlog tail --help')"),
        (["tail", TOPIC, "--format", "xml"], 2,
         "Invalid value for '--format': Value error, 'xml' is not one of 'text', 'json', 'raw'. "
         "(see 'mqlog tail --help')"),
    ],
)
def test_tail_errors(runner: CliRunner, built: Path, args: list[str], code: int,
                     message: str) -> None:
    result = run(runner, "-d", built, *args)
    assert (result.exit_code, result.stderr) == (code, f"mqlog: error: {message}\n")
    assert result.stdout == ""


def test_tail_missing_directory(runner: CliRunner, tmp_path: Path) -> None:
    result = run(runner, "-d", tmp_path / "nope", "tail", TOPIC)
    assert result.exit_code == 3
    assert result.stderr == f"mqlog: error: log directory does not exist: {tmp_path / 'nope'}\n"


def test_tail_follow_prints_appends_until_ctrl_c(runner: CliRunner, built: Path) -> None:
    """-f in this process: another Log appends, then Ctrl-C (SIGINT) ends it: exit 0."""

    def append_then_interrupt() -> None:
        time.sleep(0.3)
        with mqlog.open(built) as log:
            log.append(TOPIC, 0, [b"new-1"])
            log.append(TOPIC, 0, [b"new-2"])
        time.sleep(0.5)
        ctrl_c()

    helper = threading.Thread(target=append_then_interrupt)
    helper.start()
    try:
        result = run(runner, "-d", built, "tail", TOPIC, "-p", "0", "--offset", "149", "-f",
                     "--format", "raw")
    finally:
        helper.join()
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == value(149).decode() + "\nnew-1\nnew-2\n"


def test_tail_follow_as_a_process_sees_appends_of_another_process(built: Path) -> None:
    """The installed mqlog follows a log another process appends to: each record is
    printed within 100 ms (median), and SIGINT stops it with exit code 0, no traceback."""
    appender = _children.start("appender", built, TOPIC)
    tail = start("-d", built, "tail", TOPIC, "-n", "1", "-f", "--format", "json")
    try:
        assert json_lines(tail.stdout.readline())[0]["offset"] == 0  # partition 1: ready
        latencies = []
        for number in range(5):
            appender.stdin.write(f"{number % 2} live-{number}\n")
            appender.stdin.flush()
            offset, timestamp = map(int, appender.stdout.readline().split())
            (printed,) = json_lines(tail.stdout.readline())
            latencies.append(time.time() * 1000 - timestamp)
            assert (printed["partition"], printed["offset"], printed["timestamp"]) == (
                number % 2, offset, timestamp)
            assert base64.b64decode(printed["value"]) == f"live-{number}".encode()
            time.sleep(0.05)
        tail.send_signal(signal.SIGINT)
        code, rest, errors = finish(tail)
    finally:
        _children.stop(appender)
        if tail.poll() is None:
            tail.kill()
            tail.wait()
    assert (code, rest, errors) == (0, "", "")
    assert statistics.median(latencies) < 100, latencies
    assert max(latencies) < 1000, latencies
