"""mqlog groups, lag and seek: through CliRunner, and as real processes against a group
whose member runs in another process."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mqlog
from mqlog.consumer import TopicPartition

from . import _children
from ._cli import ctrl_c_after, finish, json_lines, run, start
from ._helpers import START_MS, TOPIC

GROUP = "billing"
TP0, TP1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
TARGETS = ("give exactly one of --to-earliest, --to-latest, --to-current, --to-offset, "
           "--shift-by, --to-datetime, --by-duration, --from-file, --delete")


@pytest.fixture
def grouped(built: Path) -> Path:
    """The known log plus group ``billing`` (no members) committed at 100 and 1."""
    with mqlog.open(built) as log:
        log.reset_offsets(GROUP, TOPIC, [0], to=100)
        log.reset_offsets(GROUP, TOPIC, [1], to=1)
    return built


def committed(path: Path) -> dict[int, int | None]:
    with mqlog.open(path) as log:
        return {p.partition: p.committed_offset for p in log.describe_group(GROUP).partitions}


# -- groups -----------------------------------------------------------------------------------


def test_groups_list_describe_delete(runner: CliRunner, grouped: Path) -> None:
    assert run(runner, "-d", grouped, "groups", "list").stdout == "billing\n"
    assert json_lines(run(runner, "-d", grouped, "groups", "list", "--json").stdout) == [
        {"name": "billing", "kind": "consumer"}]
    (described,) = json_lines(run(runner, "-d", grouped, "groups", "describe", GROUP,
                                  "--json").stdout)
    age = described["partitions"][0].pop("oldest_unconsumed_age_ms")
    assert abs(age - (time.time() * 1000 - (START_MS + 20))) < 60_000
    assert described == {
        "group": GROUP, "kind": "consumer", "state": "Empty", "generation": 0, "total_lag": 50,
        "members": [],
        "partitions": [
            {"topic": TOPIC, "partition": 0, "committed_offset": 100, "end_offset": 150,
             "lag": 50, "member_id": None},
            {"topic": TOPIC, "partition": 1, "committed_offset": 1, "end_offset": 1, "lag": 0,
             "oldest_unconsumed_age_ms": None, "member_id": None},
        ],
    }
    human = run(runner, "-d", grouped, "groups", "describe", GROUP)
    assert human.exit_code == 0
    assert human.stdout.splitlines()[0] == (
        "group billing: Empty, generation 0, 0 members, lag 50")
    declined = run(runner, "-d", grouped, "groups", "delete", GROUP, input="n\n")
    assert (declined.exit_code, declined.stdout.splitlines()[-1]) == (1, "not deleted")
    deleted = run(runner, "-d", grouped, "groups", "delete", GROUP, "--yes")
    assert (deleted.exit_code, deleted.stdout) == (0, "deleted group 'billing'\n")
    assert run(runner, "-d", grouped, "groups", "list").stdout == ""


@pytest.mark.parametrize("command", [["groups", "describe", "nope"],
                                     ["groups", "delete", "nope", "-y"], ["lag", "nope"],
                                     ["seek", "nope", "--topic", TOPIC, "--to-latest"]])
def test_unknown_group_exits_3(runner: CliRunner, grouped: Path, command: list[str]) -> None:
    result = run(runner, "-d", grouped, *command)
    assert (result.exit_code, result.stderr) == (3, "mqlog: error: unknown group 'nope'\n")


def test_group_with_a_live_member_is_not_deleted(runner: CliRunner, grouped: Path) -> None:
    with mqlog.open(grouped) as log, log.consumer(GROUP, [TOPIC], client_id="me") as member:
        member.poll(timeout=0.1)
        result = run(runner, "-d", grouped, "groups", "delete", GROUP, "--yes")
        member_id = log.describe_group(GROUP).members[0].member_id
    assert result.exit_code == 4
    assert result.stderr == (
        f"mqlog: error: cannot delete group 'billing' while it has live members: {member_id} "
        f"(client me, pid {os.getpid()} on {socket.gethostname()})\n")


# -- lag --------------------------------------------------------------------------------------


def test_lag_json_and_table(runner: CliRunner, grouped: Path) -> None:
    result = run(runner, "-d", grouped, "lag", "--json")
    assert result.exit_code == 0
    lines = json_lines(result.stdout)
    assert abs(lines[0].pop("oldest_unconsumed_age_ms") - (time.time() * 1000 - START_MS - 20)
               ) < 60_000
    assert lines == [
        {"type": "partition", "group": GROUP, "topic": TOPIC, "partition": 0,
         "current_offset": 100, "log_end_offset": 150, "lag": 50, "consumer_id": None,
         "host": None, "pid": None},
        {"type": "partition", "group": GROUP, "topic": TOPIC, "partition": 1,
         "current_offset": 1, "log_end_offset": 1, "lag": 0, "oldest_unconsumed_age_ms": None,
         "consumer_id": None, "host": None, "pid": None},
        {"type": "group", "group": GROUP, "kind": "consumer", "state": "Empty", "generation": 0,
         "members": 0,
         "total_lag": 50},
    ]
    table = run(runner, "-d", grouped, "lag", GROUP).stdout
    assert "group billing: Empty, generation 0, 0 members" in table
    assert "total" in table and "50" in table and "LAG" in table and "CONSUMER-ID" in table


def test_lag_max_lag_exit_code(runner: CliRunner, grouped: Path) -> None:
    assert run(runner, "-d", grouped, "lag", "--max-lag", "50").exit_code == 0
    over = run(runner, "-d", grouped, "lag", "--max-lag", "49", "--json")
    assert over.exit_code == 1
    assert over.stderr == "lag over 49 in 1 partitions: billing orders/0 (50)\n"
    assert len(json_lines(over.stdout)) == 3


def test_lag_without_groups(runner: CliRunner, built: Path) -> None:
    result = run(runner, "-d", built, "lag")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "no groups\n")
    assert run(runner, "-d", built, "groups", "list").stdout == ""
    assert not (built / "topics" / "__consumer_offsets").exists()  # looking creates nothing


def test_lag_watch_redraws_with_rates_until_ctrl_c(runner: CliRunner, grouped: Path) -> None:
    helper = ctrl_c_after(0.6)
    try:
        result = run(runner, "-d", grouped, "lag", GROUP, "--watch", "0.1", "--max-lag", "10")
    finally:
        helper.join()
    assert (result.exit_code, result.stderr) == (0, "")
    assert "in 0/s   out 0/s   drain never" in result.stdout
    for text in ("CURRENT-", "LOG-END-", "OFFSET", "CONSUMER-ID", "group billing", "total"):
        assert text in result.stdout


def test_lag_watch_without_a_value_takes_the_group_after_it(runner: CliRunner,
                                                            grouped: Path) -> None:
    """--watch alone: the default period; the word after it is still the GROUP."""
    helper = ctrl_c_after(0.3)
    try:
        result = run(runner, "-d", grouped, "lag", "--watch", GROUP, "--json")
    finally:
        helper.join()
    assert result.exit_code == 0, result.stderr
    assert [line["type"] for line in json_lines(result.stdout)] == [
        "partition", "partition", "group"]


def test_lag_bad_watch_period_is_a_usage_error(runner: CliRunner, grouped: Path) -> None:
    result = run(runner, "-d", grouped, "lag", "--watch", "0")
    assert result.exit_code == 2
    assert result.stderr == ("mqlog: error: Invalid value for '--watch': Input should be "
                             "greater than or equal to 0.1 (see 'mqlog lag --help')\n")


# -- seek -------------------------------------------------------------------------------------


def test_seek_is_a_dry_run_by_default(runner: CliRunner, grouped: Path) -> None:
    result = run(runner, "-d", grouped, "seek", GROUP, "--topic", TOPIC, "--to-earliest",
                 "--json")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout) == [
        {"group": GROUP, "topic": TOPIC, "partition": 0, "current_offset": 100, "new_offset": 0,
         "executed": False},
        {"group": GROUP, "topic": TOPIC, "partition": 1, "current_offset": 1, "new_offset": 0,
         "executed": False},
    ]
    assert committed(grouped) == {0: 100, 1: 1}
    table = run(runner, "-d", grouped, "seek", GROUP, "-t", TOPIC, "--to-earliest").stdout
    assert "group billing: dry run" in table
    assert table.splitlines()[-1] == "nothing changed: add --execute to apply"
    assert "-100" in table


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--to-earliest"], {0: 0, 1: 0}),
        (["--to-latest"], {0: 150, 1: 1}),
        (["--to-offset", "120", "-p", "0"], {0: 120, 1: 1}),
        (["--to-offset", "0", "-p", "0"], {0: 0, 1: 1}),
        (["--shift-by", "-30"], {0: 70, 1: 0}),
        (["--shift-by=+10", "--partition", "0"], {0: 110, 1: 1}),
        (["--to-datetime", "2023-11-14T22:13:20.025Z"], {0: 125, 1: 0}),
        (["--to-datetime", "2023-11-14T23:13:20.025+01:00"], {0: 125, 1: 0}),
        (["--by-duration", "1d"], {0: 150, 1: 1}),
    ],
)
def test_seek_execute_moves_the_offsets(runner: CliRunner, grouped: Path, options: list[str],
                                        expected: dict[int, int]) -> None:
    result = run(runner, "-d", grouped, "seek", GROUP, "--topic", TOPIC, *options, "--execute")
    assert result.exit_code == 0, result.stderr
    assert "offsets reset" in result.stdout
    assert committed(grouped) == expected


@pytest.mark.parametrize(
    ("options", "code", "message"),
    [
        ([], 2, TARGETS),
        (["--to-earliest", "--to-offset", "3"], 2,
         TARGETS),
        (["--by-duration", "an hour"], 2,
         "Invalid value for '--by-duration': 'an hour' is not a duration: use a number and a "
         "unit (ms, s, m, h, d, w), e.g. 15m, 2h, 1d, 1h30m (see 'mqlog seek --help')"),
        (["--to-datetime", "22/11/2026"], 2,
         "Invalid value for '--to-datetime': '22/11/2026' is not an ISO 8601 date and time, "
         "e.g. 2026-11-22T18:15:00, 2026-11-22 18:15:00+01:00 or 2026-11-22T17:15:00Z "
         "(see 'mqlog seek --help')"),
        (["--to-offset", "-1"], 2,
         "Invalid value for '--to-offset': Input should be greater than or equal to 0 "
         "(see 'mqlog seek --help')"),
        (["--to-latest", "-p", "5"], 3,
         f"topic '{TOPIC}' has no partition 5: it has partitions 0..1"),
        (["--to-offset", "120"], 3,
         f"offset 120 is beyond the end of {TOPIC}/1 (1): a group cannot have consumed "
         f"records not written yet"),
    ],
)
def test_seek_errors(runner: CliRunner, grouped: Path, options: list[str], code: int,
                     message: str) -> None:
    result = run(runner, "-d", grouped, "seek", GROUP, "--topic", TOPIC, *options)
    assert (result.exit_code, result.stderr) == (code, f"mqlog: error: {message}\n")
    assert committed(grouped) == {0: 100, 1: 1}


def test_seek_unknown_topic_and_missing_directory(runner: CliRunner, grouped: Path,
                                                  tmp_path: Path) -> None:
    result = run(runner, "-d", grouped, "seek", GROUP, "--topic", "nope", "--to-latest")
    assert (result.exit_code, result.stderr) == (3, "mqlog: error: unknown topic 'nope'\n")
    result = run(runner, "-d", tmp_path / "x", "seek", GROUP, "--topic", TOPIC, "--to-latest")
    assert (result.exit_code, result.stderr) == (
        3, f"mqlog: error: log directory does not exist: {tmp_path / 'x'}\n")


# -- as real processes ------------------------------------------------------------------------


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_lag_and_seek_processes_against_a_member_in_another_process(grouped: Path) -> None:
    """A member process consumes and commits everything; the installed mqlog shows it in
    lag, refuses seek --execute while it lives, and resets once it has left."""
    member = _children.start("member", grouped, GROUP, TOPIC, "worker-a", "consume")
    try:
        assert member.stdout.readline() == "owns 0,1\n", member.stderr.read()
        wait_for(lambda: committed(grouped) == {0: 150, 1: 1})
        code, out, errors = finish(start("-d", grouped, "lag", GROUP, "--json"))
        assert (code, errors) == (0, "")
        rows = json_lines(out)
        assert [(r["partition"], r["current_offset"], r["lag"], r["pid"], r["host"])
                for r in rows[:2]] == [(0, 150, 0, member.pid, socket.gethostname()),
                                       (1, 1, 0, member.pid, socket.gethostname())]
        assert rows[0]["consumer_id"].startswith("worker-a-")
        assert rows[2]["state"] == "Stable" and rows[2]["members"] == 1
        code, out, errors = finish(start("-d", grouped, "seek", GROUP, "--topic", TOPIC,
                                         "--to-earliest", "--execute"))
        assert code == 4
        assert errors.startswith("mqlog: error: cannot reset offsets of group 'billing' while "
                                 "it has live members: worker-a-")
        assert f"(client worker-a, pid {member.pid} on {socket.gethostname()})" in errors
        dry = finish(start("-d", grouped, "seek", GROUP, "--topic", TOPIC, "--to-earliest"))
        assert dry[0] == 0 and "--execute is refused until they stop" in dry[2]
    finally:
        assert _children.stop(member) == ""
    code, out, errors = finish(start("-d", grouped, "seek", GROUP, "--topic", TOPIC,
                                     "--to-earliest", "--execute"))
    assert (code, errors) == (0, "")
    assert "offsets reset" in out
    assert committed(grouped) == {0: 0, 1: 0}
    code, out, errors = finish(start("-d", grouped, "lag", "--max-lag", "100"))
    assert (code, errors) == (1, "lag over 100 in 1 partitions: billing orders/0 (150)\n")


def test_lag_watch_process_shows_appends_of_another_process(grouped: Path) -> None:
    """lag --watch --json as a process: an appender process adds records, the next
    samples show the rate in and the growing lag; SIGINT stops it with exit code 0."""
    appender = _children.start("appender", grouped, TOPIC)
    watch = start("-d", grouped, "lag", GROUP, "--watch", "0.2", "--json")
    try:
        first = [json_lines(watch.stdout.readline())[0] for _ in range(3)]
        assert first[2] == {"type": "group", "group": GROUP, "kind": "consumer",
                            "state": "Empty", "generation": 0,
                            "members": 0, "total_lag": 50}
        for number in range(20):
            appender.stdin.write(f"0 more-{number}\n")
        appender.stdin.flush()
        for _ in range(20):
            appender.stdout.readline()
        for _ in range(10):
            sample = [json_lines(watch.stdout.readline())[0] for _ in range(3)]
            if sample[2]["total_lag"] == 70:
                break
        assert sample[0]["log_end_offset"] == 170 and sample[0]["out_per_s"] == 0
        assert sample[0]["in_per_s"] > 0 and sample[2]["in_per_s"] > 0
        assert sample[2]["out_per_s"] == 0 and sample[2]["drain_s"] is None
        watch.send_signal(signal.SIGINT)
        code, _rest, errors = finish(watch)
    finally:
        _children.stop(appender)
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert (code, errors) == (0, "")
