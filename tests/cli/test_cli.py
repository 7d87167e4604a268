"""The mqlog commands through typer's CliRunner: output, --json, exit codes, errors."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import mqlog
from mqlog.cli import app

from ._helpers import (
    BATCH_BYTES,
    KEYED_RECORD,
    SEGMENT_BASES,
    TOPIC,
    batch_position,
    flip_byte,
    partition_dir,
    segment_file,
    value,
)

MQLOG = Path(sys.executable).parent / "mqlog"


def run(runner: CliRunner, *args: str | os.PathLike, **kwargs) -> Result:
    return runner.invoke(app, [os.fspath(a) for a in args], **kwargs)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


# -- the app ----------------------------------------------------------------------------------


def test_help_lists_every_command(runner: CliRunner) -> None:
    result = run(runner, "--help")
    assert result.exit_code == 0
    for command in ("verify", "dump", "topics", "demo", "--dir", "MQLOG_DIR", "--debug"):
        assert command in result.stdout


def test_no_arguments_shows_usage_with_exit_2(runner: CliRunner) -> None:
    result = run(runner)
    assert result.exit_code == 2
    assert "Usage:" in result.stdout + result.stderr


def test_unknown_option_is_a_usage_error(runner: CliRunner, built: Path) -> None:
    result = run(runner, "-d", built, "verify", "--bogus")
    assert result.exit_code == 2
    assert "No such option" in result.stderr


# -- verify -----------------------------------------------------------------------------------


def test_verify_clean_log(runner: CliRunner, built: Path) -> None:
    result = run(runner, "--dir", built, "verify")
    assert result.exit_code == 0, result.stderr
    assert "OK: no damage found (0 warnings)" in result.stdout
    assert "orders" in result.stdout and "151" in result.stdout and "1 topics" in result.stdout
    assert result.stderr == ""


def test_verify_json_lines(runner: CliRunner, built: Path) -> None:
    result = run(runner, "-d", built, "verify", "--json")
    assert result.exit_code == 0
    lines = json_lines(result.stdout)
    assert [line["type"] for line in lines] == ["partition", "partition", "summary"]
    assert lines[0] == {
        "type": "partition", "topic": TOPIC, "partition": 0, "start_offset": 0,
        "end_offset": 150, "segments": 3, "batches": 30, "records": 150,
        "bytes": 30 * BATCH_BYTES,
    }
    assert lines[-1] == {
        "type": "summary", "path": str(built), "ok": True, "topics": 1, "partitions": 2,
        "segments": 4, "batches": 31, "records": 151, "bytes": 30 * BATCH_BYTES + 81,
        "errors": 0, "warnings": 0, "recoveries": 0,
    }


def test_verify_corrupted_segment_exits_1_naming_file_and_offset(
    runner: CliRunner, built: Path
) -> None:
    path = segment_file(built, SEGMENT_BASES[1])
    flip_byte(path, batch_position(2) + 60)
    result = run(runner, "-d", built, "verify")
    assert result.exit_code == 1
    assert (f"ERROR {path} position {batch_position(2)} offset 65: bad batch: checksum mismatch"
            in result.stdout)
    assert "DAMAGED: 1 errors, 0 warnings" in result.stdout


def test_verify_corrupted_segment_json(runner: CliRunner, built: Path) -> None:
    path = segment_file(built, 0)
    flip_byte(path, 40)  # the first batch's max_timestamp: covered by the checksum
    result = run(runner, "-d", built, "verify", "--json")
    assert result.exit_code == 1
    problems = [line for line in json_lines(result.stdout) if line["type"] == "problem"]
    assert problems == [{
        "type": "problem", "severity": "error", "description": "bad batch: checksum mismatch",
        "topic": TOPIC, "partition": 0, "file": str(path), "offset": 0, "position": 0,
    }]
    assert json_lines(result.stdout)[-1]["ok"] is False


def test_verify_warnings_do_not_fail(runner: CliRunner, built: Path) -> None:
    segment_file(built, 150).touch()
    result = run(runner, "-d", built, "verify")
    assert result.exit_code == 0
    assert "WARNING" in result.stdout and "OK: no damage found (1 warnings)" in result.stdout


def test_verify_missing_directory_exits_3(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = run(runner, "-d", missing, "verify")
    assert result.exit_code == 3
    assert result.stderr == f"mqlog: error: log directory does not exist: {missing}\n"
    assert result.stdout == ""


def test_verify_directory_that_is_not_a_log_exits_4(runner: CliRunner, tmp_path: Path) -> None:
    result = run(runner, "-d", tmp_path, "verify")
    assert result.exit_code == 4
    assert result.stderr == (
        f"mqlog: error: {tmp_path} is not an mqlog log directory (no mqlog.json)\n")


def test_dir_from_environment_then_default(
    runner: CliRunner, built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(runner, "verify", "--json", env={"MQLOG_DIR": str(built)})
    assert json_lines(result.stdout)[-1]["path"] == str(built)
    monkeypatch.chdir(tmp_path)
    result = run(runner, "verify", env={"MQLOG_DIR": None})
    assert result.exit_code == 3
    assert result.stderr == (
        f"mqlog: error: log directory does not exist: {tmp_path / 'mqlog-data'}\n")


def test_debug_adds_the_traceback_and_keeps_the_exit_code(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = run(runner, "--debug", "-d", tmp_path / "nope", "verify")
    assert result.exit_code == 3
    assert "Traceback" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("mqlog: error: log directory")


def test_verify_as_a_real_process(built: Path) -> None:
    """The installed console script, end to end (exit codes and stdout of a real process)."""
    clean = subprocess.run([MQLOG, "--dir", built, "verify", "--json"], capture_output=True,
                           text=True, timeout=60)
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout.splitlines()[-1])["records"] == 151
    flip_byte(segment_file(built, 0), batch_position(1) + 70)
    damaged = subprocess.run([MQLOG, "--dir", built, "verify"], capture_output=True,
                             text=True, timeout=60)
    assert damaged.returncode == 1
    assert f"{segment_file(built, 0)} position {BATCH_BYTES} offset 5" in damaged.stdout


# -- dump -------------------------------------------------------------------------------------


def test_dump_batches(runner: CliRunner, built: Path) -> None:
    result = run(runner, "dump", segment_file(built, SEGMENT_BASES[2]))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["position", "base_offset", "count", "first_timestamp",
                                "max_timestamp", "length", "checksum"]
    assert lines[1].split() == ["0", "110", "5", "2023-11-14T22:13:20.022Z",
                                "2023-11-14T22:13:20.022Z", str(BATCH_BYTES), "ok"]
    assert len(lines) == 1 + 8 + 1
    assert lines[-1] == "8 batches, 40 records, 0 bad"


def test_dump_records_truncates_values(runner: CliRunner, built: Path) -> None:
    result = run(runner, "dump", "--records", "--width", "12", segment_file(built, 0))
    assert result.exit_code == 0
    record_lines = [line for line in result.stdout.splitlines() if line.split()[0] == "offset"]
    assert len(record_lines) == 55
    assert record_lines[0].split() == ["offset", "0", "2023-11-14T22:13:20.000Z",
                                       "value=b'00000:=..."]


def test_dump_records_with_key_and_headers(runner: CliRunner, built: Path) -> None:
    result = run(runner, "dump", "-r", segment_file(built, 0, partition=1))
    assert "key=b'k1'  value=b'hello'  headers={'h': b'v'}" in result.stdout


def test_dump_json(runner: CliRunner, built: Path) -> None:
    result = run(runner, "dump", "--json", "--records", segment_file(built, 0, partition=1))
    assert result.exit_code == 0
    batch, record = json_lines(result.stdout)
    assert batch["type"] == "batch"
    assert (batch["position"], batch["base_offset"], batch["record_count"], batch["valid"],
            batch["error"], batch["attributes"]) == (0, 0, 1, True, None, 3)
    assert record == {
        "type": "record", "offset": 0, "timestamp": record["timestamp"],
        "key": base64.b64encode(KEYED_RECORD.key).decode(),
        "value": base64.b64encode(KEYED_RECORD.value).decode(),
        "headers": {"h": base64.b64encode(b"v").decode()},
    }


def test_dump_json_values_are_exact(runner: CliRunner, built: Path) -> None:
    result = run(runner, "dump", "--json", "-r", segment_file(built, SEGMENT_BASES[1]))
    records = [line for line in json_lines(result.stdout) if line["type"] == "record"]
    assert [base64.b64decode(r["value"]) for r in records] == [value(n) for n in range(55, 110)]


def test_dump_corrupted_segment_exits_1(runner: CliRunner, built: Path) -> None:
    path = segment_file(built, 0)
    flip_byte(path, batch_position(4) + 50)
    result = run(runner, "dump", path)
    assert result.exit_code == 1
    bad = [line for line in result.stdout.splitlines() if "BAD" in line]
    assert len(bad) == 1 and bad[0].split()[:2] == [str(batch_position(4)), "20"]
    assert bad[0].endswith("BAD: checksum mismatch")
    assert result.stdout.splitlines()[-1] == "11 batches, 50 records, 1 bad"


def test_dump_missing_file_exits_3(runner: CliRunner, tmp_path: Path) -> None:
    result = run(runner, "dump", tmp_path / "missing.log")
    assert result.exit_code == 3
    assert result.stderr == f"mqlog: error: No such file or directory: {tmp_path}/missing.log\n"
    assert result.stdout == ""


def test_dump_directory_exits_4(runner: CliRunner, tmp_path: Path) -> None:
    result = run(runner, "dump", tmp_path)
    assert result.exit_code == 4
    assert "is a directory, not a segment file" in result.stderr


def test_dump_of_a_file_that_is_not_a_segment_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "README.txt"
    path.write_text("this is a text file, not a segment file of any mqlog log directory\n")
    result = run(runner, "dump", path)
    assert result.exit_code == 2
    assert result.stderr == f"mqlog: error: {path}: not a segment file: bad magic 120\n"
    assert result.stdout == ""


# -- topics -----------------------------------------------------------------------------------


def test_topics_create_list_describe_delete(runner: CliRunner, log_dir: Path) -> None:
    created = run(runner, "-d", log_dir, "topics", "create", "events", "-p", "3",
                  "--segment-bytes", "8192", "--durability", "always", "--retention-ms", "60000")
    assert created.exit_code == 0, created.stderr
    assert created.stdout == "created topic 'events' with 3 partitions\n"
    assert run(runner, "-d", log_dir, "topics", "create", "other").exit_code == 0
    listed = run(runner, "-d", log_dir, "topics", "list")
    assert listed.stdout == "events\nother\n"
    assert json_lines(run(runner, "-d", log_dir, "topics", "list", "--json").stdout) == [
        {"name": "events"}, {"name": "other"}]
    described = json_lines(
        run(runner, "-d", log_dir, "topics", "describe", "events", "--json").stdout)
    (document,) = described
    assert document["config"]["segment_bytes"] == 8192
    assert document["config"]["durability"] == "always"
    assert document["config"]["retention_ms"] == 60000
    assert [p["partition"] for p in document["partitions"]] == [0, 1, 2]
    human = run(runner, "-d", log_dir, "topics", "describe", "events")
    assert human.exit_code == 0 and "segment_bytes = 8192" in human.stdout
    deleted = run(runner, "-d", log_dir, "topics", "delete", "events", "--yes")
    assert deleted.exit_code == 0 and deleted.stdout == "deleted topic 'events'\n"
    with mqlog.open(log_dir) as log:
        assert log.topics() == ["other"]


def test_topics_describe_reports_offsets(runner: CliRunner, built: Path) -> None:
    (document,) = json_lines(run(runner, "-d", built, "topics", "describe", TOPIC,
                                 "--json").stdout)
    assert [(p["start_offset"], p["end_offset"], p["segment_count"], p["record_count"])
            for p in document["partitions"]] == [(0, 150, 3, 150), (0, 1, 1, 1)]


def test_topics_delete_asks_first(runner: CliRunner, built: Path) -> None:
    declined = run(runner, "-d", built, "topics", "delete", TOPIC, input="n\n")
    assert declined.exit_code == 1
    assert "not deleted" in declined.stdout
    assert (partition_dir(built)).is_dir()
    accepted = run(runner, "-d", built, "topics", "delete", TOPIC, input="y\n")
    assert accepted.exit_code == 0
    assert not (built / "topics" / TOPIC).exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["topics", "describe", "nope"], 3, "mqlog: error: unknown topic 'nope'\n"),
        (["topics", "delete", "nope", "-y"], 3, "mqlog: error: unknown topic 'nope'\n"),
        (["topics", "create", "bad name"], 2,
         "mqlog: error: topic name 'bad name' has characters outside [a-zA-Z0-9._-]\n"),
        (["topics", "create", "x", "--partitions", "0"], 2,
         "mqlog: error: partitions must be an int from 1 to 10000, not 0\n"),
        (["topics", "create", "x", "--segment-bytes", "10"], 2,
         "mqlog: error: segment_bytes must be between 4096 and 2147483647, not 10\n"),
        (["topics", "create", TOPIC], 4, f"mqlog: error: topic '{TOPIC}' already exists\n"),
    ],
)
def test_topics_errors(runner: CliRunner, built: Path, args: list[str], code: int,
                       message: str) -> None:
    result = run(runner, "-d", built, *args)
    assert (result.exit_code, result.stderr) == (code, message)


def test_topics_list_on_missing_directory_exits_3(runner: CliRunner, tmp_path: Path) -> None:
    result = run(runner, "-d", tmp_path / "nope", "topics", "list")
    assert result.exit_code == 3
    assert not (tmp_path / "nope").exists()


def test_bad_durability_choice_is_a_usage_error(runner: CliRunner, log_dir: Path) -> None:
    result = run(runner, "-d", log_dir, "topics", "create", "x", "--durability", "sometimes")
    assert result.exit_code == 2
    assert not log_dir.exists()
