"""mqlog tail beyond one topic and an open end: several topics and ^regular
expressions, -c/--count, --until, --to-offset, -F format strings, and -f following
partitions added later and a topic deleted and created again."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mqlog
from mqlog import Record
from mqlog.cli._tailing import Bounds, Follower, Selection
from mqlog.consumer import TopicPartition

from ._cli import finish, run, start
from ._helpers import START_MS, TOPIC, value
from .test_tail import P1_LINE, p0_line, text_line

#: How long a following command may run before the test gives up on it (killed):
#: a bound against a hang, not a measurement.
GIVE_UP_S = 60


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def test_count_stops_after_n_records(runner: CliRunner, built: Path) -> None:
    result = run(runner, "-d", built, "tail", TOPIC, "--from-beginning", "-c", "3")
    assert result.stdout.splitlines() == [p0_line(n) for n in range(3)]
    grep = run(runner, "-d", built, "tail", TOPIC, "--from-beginning", "--count", "2",
               "--grep", "^0001[0-9]")
    assert grep.stdout.splitlines() == [p0_line(10), p0_line(11)]


def test_to_offset_and_until_end_the_range(runner: CliRunner, built: Path) -> None:
    result = run(runner, "-d", built, "tail", TOPIC, "-p", "0", "--offset", "10",
                 "--to-offset", "13", "--format", "raw")
    assert result.stdout_bytes == b"".join(value(n) + b"\n" for n in (10, 11, 12))
    until = run(runner, "-d", built, "tail", TOPIC, "--from-beginning", "--until",
                iso(START_MS + 2))  # batches 0 and 1 of partition 0: offsets 0..9
    assert until.stdout.splitlines() == [p0_line(n) for n in range(10)]
    last = run(runner, "-d", built, "tail", TOPIC, "-n", "2", "--until", iso(START_MS + 2))
    assert last.stdout.splitlines() == [p0_line(8), p0_line(9)]


def test_format_string_tokens_and_escapes(runner: CliRunner, built: Path) -> None:
    result = run(runner, "-d", built, "tail", TOPIC, "-n", "2", "-F",
                 r"%t %p:%o %k|%s\t%K %S %T %h %%")
    assert result.stdout_bytes == (
        f"{TOPIC} 0:149 |".encode() + value(149) + f"\t-1 40 {START_MS + 29}  %\n".encode()
        + f"{TOPIC} 1:0 k1|hello\t2 5 {START_MS + 30} h=v %\n".encode())
    kcat_style = run(runner, "-d", built, "tail", TOPIC, "-p", "1", "--format-string", r"%s\n")
    assert kcat_style.stdout == "hello\n"  # a template ending in \n gets no second one


@pytest.mark.parametrize(("args", "message"), [
    (["-F", "%s %x"], "Invalid value for '--format-string': unknown token %x in '%s %x': use "
                      "%t %p %o %k %s %K %S %T %h or %% (see 'mqlog tail --help')"),
    (["-F", "%s", "--format", "json", "--key"],
     "--format-string says what is printed: drop --format, --key"),
    (["--since", "1h", "--until", "2h"],
     "--until is before the start (--since or --at): the window is empty"),
    (["--offset", "5", "--to-offset", "4"], "--to-offset 4 is before --offset 5"),
    (["-c", "0"], "Invalid value for '--count' / '-c': Input should be greater than or "
                  "equal to 1 (see 'mqlog tail --help')"),
])
def test_bad_bounds_and_templates_are_usage_errors(runner: CliRunner, built: Path,
                                                   args: list[str], message: str) -> None:
    result = run(runner, "-d", built, "tail", TOPIC, *args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"mqlog: error: {message}\n"


@pytest.fixture
def three_topics(built: Path) -> Path:
    """The known log plus ``orders.eu`` and ``audit``, one record each, stamped after
    every record of ``orders``."""
    with mqlog.open(built) as log:
        for offset_ms, name in ((40, "orders.eu"), (50, "audit")):
            log.create_topic(name)
            log.append(name, 0, [Record(name.encode(), timestamp=START_MS + offset_ms)])
    return built


def test_several_topics_and_a_regex_are_merged_by_time(runner: CliRunner,
                                                       three_topics: Path) -> None:
    named = run(runner, "-d", three_topics, "tail", "audit", TOPIC, "-n", "3")
    assert named.stdout.splitlines() == [
        f"{TOPIC}/" + p0_line(149), f"{TOPIC}/" + P1_LINE,
        text_line(0, 0, START_MS + 50, "audit").replace("0:0", "audit/0:0", 1)]
    regex = run(runner, "-d", three_topics, "tail", "^orders", "--format", "raw", "-n", "2")
    assert regex.stdout == "hello\norders.eu\n"  # audit does not match
    anchored = run(runner, "-d", three_topics, "tail", r"^orders\.", "-F", "%t")
    assert anchored.stdout == "orders.eu\n"


@pytest.mark.parametrize(("args", "code", "message"), [
    (["audit", "nope"], 3, "unknown topic 'nope'"),
    (["^(", "audit"], 2, "Invalid value for 'TOPIC': bad regular expression '^(': missing ), "
                         "unterminated subpattern at position 1 (see 'mqlog tail --help')"),
    (["audit", TOPIC, "-p", "0"], 2, "--partition needs exactly one topic"),
])
def test_topic_selection_errors(runner: CliRunner, three_topics: Path, args: list[str],
                                code: int, message: str) -> None:
    result = run(runner, "-d", three_topics, "tail", *args)
    assert (result.exit_code, result.stderr) == (code, f"mqlog: error: {message}\n")


def follow_while(args: list, change: Callable[[], None]) -> tuple[int, str, str]:
    """Run ``mqlog tail ARGS -f`` as a process; once it printed its first line (so it
    took its starting positions), make ``change`` to the log from this process. The
    command must end by itself (its -c or bounds): (exit code, stdout, stderr)."""
    process = start(*args, "-f")
    try:
        first = process.stdout.readline()
        change()
        code, rest, errors = finish(process, timeout=GIVE_UP_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, first + rest, errors


def test_follow_reads_partitions_added_later(built: Path) -> None:
    def grow() -> None:
        with mqlog.open(built) as log:
            log.alter_topic(TOPIC, partitions=3)
            log.append(TOPIC, 2, [b"in-new-partition"])

    result = follow_while(["-d", built, "tail", TOPIC, "-n", "1", "--format", "raw", "-c", "2"],
                          grow)
    assert result == (0, "hello\nin-new-partition\n",
                      f"mqlog: topic '{TOPIC}': now 3 partitions\n")


def test_follow_waits_for_a_deleted_topic_and_reads_it_again(log_dir: Path) -> None:
    with mqlog.open(log_dir) as log:
        log.create_topic("events")
        log.append("events", 0, [b"old"])

    def recreate() -> None:
        with mqlog.open(log_dir) as log:
            log.delete_topic("events")
            log.create_topic("events", partitions=2)
            log.append("events", 1, [b"new"])

    result = follow_while(["-d", log_dir, "tail", "events", "--format", "raw", "-c", "2"],
                          recreate)
    assert result == (0, "old\nnew\n",
                      "mqlog: topic 'events' was deleted: waiting for it to be created again\n"
                      "mqlog: topic 'events' was created again, with 2 partitions: reading it "
                      "from its start\n")


def test_follow_with_a_regex_picks_up_new_topics(built: Path) -> None:
    def create() -> None:
        with mqlog.open(built) as log:
            log.create_topic("orders.us")
            log.append("orders.us", 0, [b"from-us"])

    result = follow_while(["-d", built, "tail", "^orders", "-n", "1", "-F", "%t %s", "-c", "2"],
                          create)
    assert result == (0, f"{TOPIC} hello\norders.us from-us\n",
                      "mqlog: topic 'orders.us' was created, with 1 partition: reading it from "
                      "its start\n")


def test_follow_ends_at_to_offset(built: Path) -> None:
    def append() -> None:
        with mqlog.open(built) as log:
            log.append(TOPIC, 1, [b"a", b"b", b"c"])

    result = follow_while(["-d", built, "tail", TOPIC, "-p", "1", "--format", "raw",
                           "--to-offset", "3"], append)
    assert result == (0, "hello\na\nb\n", "")


def test_a_follower_of_one_partition_sees_no_change_in_an_unchanged_topic(built: Path) -> None:
    """With -p, the other partitions of the topic are not news at the next look."""
    told: list[str] = []
    with mqlog.open(built) as log:
        follower = Follower(log, Selection.parse([TOPIC]), 0, {TopicPartition(TOPIC, 0): 150},
                            Bounds(), lambda error: None, told.append)
        follower.watch()
        assert (told, follower.positions) == ([], {TopicPartition(TOPIC, 0): 150})
        log.alter_topic(TOPIC, partitions=3)
        follower.watch()
        assert (told, follower.positions) == ([f"topic '{TOPIC}': now 3 partitions"],
                                              {TopicPartition(TOPIC, 0): 150})
