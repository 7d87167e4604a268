"""mqlog produce and mqlog consume through CliRunner (and a pipe's reader going away)."""

from __future__ import annotations

import base64
import subprocess
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mqlog
from mqlog.producer import key_partition

from ._cli import MQLOG, ctrl_c, json_lines, run
from ._helpers import TOPIC, value


@pytest.fixture
def events(log_dir: Path) -> Path:
    """An empty log with topic ``events`` of 3 partitions."""
    with mqlog.open(log_dir) as log:
        log.create_topic("events", partitions=3)
    return log_dir


def records(path: Path, topic: str = "events") -> list[tuple[int, int, bytes | None, bytes, dict]]:
    """(partition, offset, key, value, headers) of every record, partition by partition."""
    with mqlog.open(path) as log:
        return [(p.partition, r.offset, r.key, r.value, dict(r.headers))
                for p in log.describe_topic(topic).partitions
                for r in log.iter(topic, p.partition)]


# -- produce ----------------------------------------------------------------------------------


def test_produce_text_lines_with_keys(runner: CliRunner, events: Path) -> None:
    result = run(runner, "-d", events, "produce", "events", "--key-sep", "=",
                 input="k1=one\n\nk2=two\nno key\n")
    assert (result.exit_code, result.stdout) == (0, "produced 3 records to 'events'\n")
    found = sorted(records(events), key=lambda r: r[3])
    assert [(r[2], r[3]) for r in found] == [(None, b"no key"), (b"k1", b"one"), (b"k2", b"two")]
    assert [r[0] for r in found[1:]] == [key_partition(b"k1", 3), key_partition(b"k2", 3)]


def test_produce_to_a_partition_with_headers_and_json_report(runner: CliRunner,
                                                             events: Path) -> None:
    result = run(runner, "-d", events, "produce", "events", "-p", "2", "-H", "source=cli",
                 "-H", "v=1", "--json", input="a\nb\n")
    assert result.exit_code == 0, result.stderr
    report = json_lines(result.stdout)
    assert [(line["topic"], line["partition"], line["offset"]) for line in report] == [
        ("events", 2, 0), ("events", 2, 1)]
    assert records(events) == [(2, 0, None, b"a", {"source": b"cli", "v": b"1"}),
                               (2, 1, None, b"b", {"source": b"cli", "v": b"1"})]


def test_produce_json_lines(runner: CliRunner, events: Path) -> None:
    lines = ('{"value": "plain", "key": "k", "headers": {"h": "x"}, "partition": 1, '
             '"timestamp": 1700000000000}\n'
             '{"value": {"total": 12}, "partition": 0}\n')
    result = run(runner, "-d", events, "produce", "events", "--format", "json", input=lines)
    assert result.exit_code == 0, result.stderr
    assert records(events) == [(0, 0, None, b'{"total":12}', {}),
                               (1, 0, b"k", b"plain", {"h": b"x"})]
    with mqlog.open(events) as log:
        assert log.read("events", 1, 0)[0].timestamp == 1_700_000_000_000


def test_tail_json_output_produces_back_with_base64(runner: CliRunner, built: Path) -> None:
    """tail --format json | produce --format json --base64 copies records exactly."""
    with mqlog.open(built) as log:
        log.create_topic("copy", partitions=2)
    dumped = run(runner, "-d", built, "tail", TOPIC, "-n", "3", "--format", "json").stdout
    result = run(runner, "-d", built, "produce", "copy", "--format", "json", "--base64",
                 input=dumped)
    assert result.exit_code == 0, result.stderr
    assert [r[1:] for r in records(built, "copy")] == [
        (0, None, value(148), {}), (1, None, value(149), {}), (0, b"k1", b"hello", {"h": b"v"})]


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (["--format", "json"], '{"value": "ok"}\nnot json\n', 2,
         "line 2: not valid JSON: Expecting value: line 1 column 1 (char 0) "
         "(1 records sent before it)"),
        (["--format", "json"], '{"key": "k"}\n', 2,
         'line 1: expected an object with a "value" (0 records sent before it)'),
        (["--format", "json"], '{"value": "v", "partition": "1"}\n', 2,
         'line 1: partition must be an integer, not "1" (0 records sent before it)'),
        (["--format", "json", "--base64"], '{"value": "@@"}\n', 2,
         "line 1: value is not base64: '@@' (0 records sent before it)"),
        (["-H", "novalue"], "x\n", 2,
         "Invalid value for '--header': 'novalue' is not NAME=VALUE (see 'mqlog produce --help')"),
        (["-p", "3"], "x\n", 3, "topic 'events' has no partition 3: it has partitions 0..2"),
    ],
)
def test_produce_errors(runner: CliRunner, events: Path, args: list[str], stdin: str, code: int,
                        message: str) -> None:
    result = run(runner, "-d", events, "produce", "events", *args, input=stdin)
    assert (result.exit_code, result.stderr) == (code, f"mqlog: error: {message}\n")


def test_produce_unknown_topic_and_missing_directory(runner: CliRunner, events: Path,
                                                     tmp_path: Path) -> None:
    result = run(runner, "-d", events, "produce", "nope", input="x\n")
    assert (result.exit_code, result.stderr) == (3, "mqlog: error: unknown topic 'nope'\n")
    result = run(runner, "-d", tmp_path / "none", "produce", "events", input="x\n")
    assert result.exit_code == 3
    assert not (tmp_path / "none").exists()


def test_produce_record_too_large_exits_4(runner: CliRunner, log_dir: Path) -> None:
    with mqlog.open(log_dir) as log:
        log.create_topic("small", max_record_bytes=10)
    result = run(runner, "-d", log_dir, "produce", "small", input="01234567890\n")
    assert (result.exit_code, result.stderr) == (
        4, "mqlog: error: record is 11 bytes, over max_record_bytes=10 of topic 'small'\n")


# -- consume ----------------------------------------------------------------------------------


def group_offsets(path: Path, group: str) -> dict[int, int | None]:
    with mqlog.open(path) as log:
        return {p.partition: p.committed_offset for p in log.describe_group(group).partitions}


def test_consume_prints_and_commits(runner: CliRunner, built: Path) -> None:
    first = run(runner, "-d", built, "consume", TOPIC, "-g", "g", "--from-beginning", "-n", "3",
                "--format", "raw")
    assert (first.exit_code, first.stdout) == (0, "".join(value(n).decode() + "\n"
                                                         for n in range(3)))
    assert group_offsets(built, "g") == {0: 3}
    second = run(runner, "-d", built, "consume", TOPIC, "--group", "g", "--max-records", "2",
                 "--format", "json")
    assert [(line["partition"], line["offset"]) for line in json_lines(second.stdout)] == [
        (0, 3), (0, 4)]
    assert group_offsets(built, "g")[0] == 5
    with mqlog.open(built) as log:
        assert log.describe_group("g").members == []  # it left the group


def test_consume_timeout_grep_and_key(runner: CliRunner, built: Path) -> None:
    began = time.monotonic()
    result = run(runner, "-d", built, "consume", TOPIC, "-g", "g", "--from-beginning",
                 "--timeout", "0.3", "--grep", "^(00149|hello)", "--key")
    assert result.exit_code == 0, result.stderr
    assert [line.split("  ")[::2] for line in result.stdout.splitlines()] == [
        ["0:149", "-"], ["1:0", "k1"]]
    assert time.monotonic() - began < 10
    assert group_offsets(built, "g") == {0: 150, 1: 1}  # filtered records are consumed too


def test_consume_new_group_starts_at_the_end(runner: CliRunner, built: Path) -> None:
    result = run(runner, "-d", built, "consume", TOPIC, "-g", "late", "--timeout", "0.2")
    assert (result.exit_code, result.stdout) == (0, "")


def test_consume_waits_for_appends_until_ctrl_c(runner: CliRunner, built: Path) -> None:
    def append_then_interrupt() -> None:
        with mqlog.open(built) as log:  # the member starts at the end once it owns it
            while "g" not in log.list_groups() or not any(
                    p.member_id for p in log.describe_group("g").partitions if p.partition == 1):
                time.sleep(0.05)
            time.sleep(0.4)
            log.append(TOPIC, 1, [b"late arrival"])
        time.sleep(0.4)
        ctrl_c()

    helper = threading.Thread(target=append_then_interrupt)
    helper.start()
    try:
        result = run(runner, "-d", built, "consume", TOPIC, "-g", "g", "--format", "raw")
    finally:
        helper.join()
    assert (result.exit_code, result.stdout, result.stderr) == (0, "late arrival\n", "")
    assert group_offsets(built, "g") == {0: 150, 1: 2}  # started at the end of both
    with mqlog.open(built) as log:
        assert log.describe_group("g").state == "Empty"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["nope", "-g", "g"], 3, "mqlog: error: unknown topic 'nope'\n"),
        ([TOPIC], 2, "mqlog: error: give --group G, or --partition P to read one partition "
                     "without a group\n"),
        ([TOPIC, "-g", "g", "--timeout", "soon"], 2,
         "mqlog: error: Invalid value for '--timeout': Input should be a valid number, "
         "unable to parse string as a number (see 'mqlog consume --help')\n"),
    ],
)
def test_consume_errors(runner: CliRunner, built: Path, args: list[str], code: int,
                        message: str) -> None:
    result = run(runner, "-d", built, "consume", *args)
    assert (result.exit_code, result.stderr) == (code, message)


# -- a closed pipe ------------------------------------------------------------------------------


def test_commands_stop_quietly_when_the_reader_goes_away(built: Path) -> None:
    """mqlog ... | head: exit code 141 (as SIGPIPE), no error message, whether the
    reader goes away while a long output is written or while tail -f waits."""
    with mqlog.open(built) as log:
        log.append(TOPIC, 1, [b"x" * 100] * 5000)  # 500 KB of text: more than a pipe holds
    for command in (["tail", TOPIC, "--from-beginning"], ["tail", TOPIC, "-n", "1", "-f"]):
        process = subprocess.Popen([MQLOG, "-d", built, *command], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        assert process.stdout.readline()
        process.stdout.close()  # the reader goes away
        assert process.wait(timeout=20) == 141
        assert process.stderr.read() == b""
        process.stderr.close()


def test_base64_in_consume_json(runner: CliRunner, built: Path) -> None:
    result = run(runner, "-d", built, "consume", TOPIC, "-g", "j", "--from-beginning", "-n",
                 "151", "--format", "json")
    last = json_lines(result.stdout)[-1]
    assert (last["partition"], base64.b64decode(last["key"]), base64.b64decode(last["value"]),
            last["headers"]) == (1, b"k1", b"hello", {"h": base64.b64encode(b"v").decode()})
