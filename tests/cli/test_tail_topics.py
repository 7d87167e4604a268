"""mqlog tail beyond one topic and an open end: several topics and ^regular
expressions, -c/--count, --until, --to-offset, -F format strings, and -f following
partitions added later and a topic deleted and created again."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import mqlog
from mqlog import Record

from ._cli import ctrl_c, run
from ._helpers import START_MS, TOPIC, value
from .test_tail import P1_LINE, p0_line, text_line

#: How long a following command may run before the test gives up on it (Ctrl-C):
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


def follow_while(runner: CliRunner, args: list, change: Callable[[], None]) -> Result:
    """Run ``mqlog tail ARGS -f`` while another thread makes ``change`` to the log;
    the command must end by itself (its -c), else Ctrl-C after GIVE_UP_S."""
    ended = threading.Event()

    def act() -> None:
        time.sleep(0.5)  # let tail start following
        change()
        if not ended.wait(GIVE_UP_S):
            ctrl_c()

    helper = threading.Thread(target=act)
    helper.start()
    try:
        return run(runner, *args, "-f")
    finally:
        ended.set()
        helper.join()


def test_follow_reads_partitions_added_later(runner: CliRunner, built: Path) -> None:
    def grow() -> None:
        with mqlog.open(built) as log:
            log.alter_topic(TOPIC, partitions=3)
            log.append(TOPIC, 2, [b"in-new-partition"])

    result = follow_while(runner, ["-d", built, "tail", TOPIC, "-n", "0", "--format", "raw",
                                   "-c", "1"], grow)
    assert (result.exit_code, result.stdout) == (0, "in-new-partition\n")
    assert result.stderr == f"mqlog: topic '{TOPIC}': now 3 partitions\n"


def test_follow_waits_for_a_deleted_topic_and_reads_it_again(runner: CliRunner,
                                                             log_dir: Path) -> None:
    with mqlog.open(log_dir) as log:
        log.create_topic("events")
        log.append("events", 0, [b"old"])

    def recreate() -> None:
        with mqlog.open(log_dir) as log:
            log.delete_topic("events")
            log.create_topic("events", partitions=2)
            log.append("events", 1, [b"new"])

    result = follow_while(runner, ["-d", log_dir, "tail", "events", "--format", "raw", "-c",
                                   "2"], recreate)
    assert (result.exit_code, result.stdout) == (0, "old\nnew\n")
    assert result.stderr == (
        "mqlog: topic 'events' was deleted: waiting for it to be created again\n"
        "mqlog: topic 'events' was created again, with 2 partitions: reading it from its "
        "start\n")


def test_follow_with_a_regex_picks_up_new_topics(runner: CliRunner, built: Path) -> None:
    def create() -> None:
        with mqlog.open(built) as log:
            log.create_topic("orders.us")
            log.append("orders.us", 0, [b"from-us"])

    result = follow_while(runner, ["-d", built, "tail", "^orders", "-n", "0", "-F", "%t %s",
                                   "-c", "1"], create)
    assert (result.exit_code, result.stdout) == (0, "orders.us from-us\n")
    assert result.stderr == ("mqlog: topic 'orders.us' was created, with 1 partitions: "
                             "reading it from its start\n")


def test_follow_ends_at_to_offset(runner: CliRunner, built: Path) -> None:
    def append() -> None:
        with mqlog.open(built) as log:
            log.append(TOPIC, 1, [b"a", b"b", b"c"])

    result = follow_while(runner, ["-d", built, "tail", TOPIC, "-p", "1", "--format", "raw",
                                   "--to-offset", "3"], append)
    assert (result.exit_code, result.stdout) == (0, "hello\na\nb\n")
