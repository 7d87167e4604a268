"""Queue groups in ``mqlog lag``, ``mqlog groups`` and ``mqlog seek``.

Queue group ``work`` serves topic ``jobs`` (one partition, 30 records) of the
known log: records 0-9 acked, 10-14 held by a live worker, 15 nacked for an
hour, 16-17 dead-lettered, 18 nacked and ready again; 18-29 are ready.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mqlog

from ._cli import json_lines, run

GROUP = "work"
TOPIC = "jobs"


def add_jobs(log: mqlog.Log) -> None:
    log.create_topic(TOPIC)
    log.append(TOPIC, 0, [b"job-%d" % number for number in range(30)])


@pytest.fixture
def served(built: Path) -> Iterator[tuple[Path, int]]:
    """The known log with queue group ``work`` as in the module docstring, and the id
    of its live worker (closed at teardown)."""
    with mqlog.open(built) as log:
        add_jobs(log)
        worker = log.queue(GROUP, TOPIC, ack_timeout_s=3600, max_deliveries=2)
        for message in worker.receive(max_messages=10):
            message.ack()
        assert len(worker.receive(max_messages=5)) == 5  # 10-14: held
        later, *dead = worker.receive(max_messages=3)  # 15-17
        later.nack(delay_s=3600)
        for message in dead:
            message.nack(delay_s=0)
        for _ in dead:
            [message] = worker.receive(max_messages=1)  # their last attempt, each alone
            message.nack(delay_s=0)
        [eighteen] = worker.receive(max_messages=1)  # 16-17 go to the DLQ
        assert eighteen.offset == 18
        eighteen.nack(delay_s=0)  # ready again
        try:
            yield built, worker.member_id
        finally:
            worker.close()


def test_lag_json_shows_the_queue_depth(runner: CliRunner, served: tuple[Path, int]) -> None:
    path, _member = served
    result = run(runner, "-d", path, "lag", GROUP, "--json")
    assert result.exit_code == 0, result.stderr
    rows = json_lines(result.stdout)
    assert 0 <= rows[0].pop("oldest_unconsumed_age_ms") < 60_000
    assert rows == [
        {"type": "partition", "group": GROUP, "topic": TOPIC, "partition": 0,
         "current_offset": 10, "log_end_offset": 30, "lag": 18, "consumer_id": None,
         "host": None, "pid": None, "ready": 12, "in_flight": 5, "delayed": 1, "expired": 0,
         "dead_lettered": 2},
        {"type": "group", "group": GROUP, "kind": "queue", "state": "Stable", "generation": 0,
         "members": 1, "total_lag": 18},
    ]


def test_lag_table_of_a_queue_group(runner: CliRunner, served: tuple[Path, int]) -> None:
    path, _member = served
    result = run(runner, "-d", path, "lag", GROUP, "--max-lag", "10")
    assert result.exit_code == 1  # partition 0 is over 10
    lines = result.stdout.splitlines()
    assert lines[0].strip() == "queue group work: Stable, 1 workers"
    assert [line.split() for line in lines if "READY" in line] == [
        ["TOPIC", "PARTITION", "POSITION", "LOG-END-OFFSET", "LAG", "READY", "IN-FLIGHT",
         "DELAYED", "DEAD-LETTERED", "AGE"]]  # piped: plain columns, one heading line
    [row] = [line.split() for line in lines if line.split()[:2] == [TOPIC, "0"]]
    assert row[:9] == [TOPIC, "0", "10", "30", "18", "12", "5", "1", "2"]
    [total] = [line.split() for line in lines if line.split()[:1] == ["total"]]
    assert total == ["total", "18", "12", "5", "1", "2"]
    assert "lag over 10 in 1 partitions: work jobs/0 (18)" in result.stderr


def test_groups_list_and_describe_a_queue_group(runner: CliRunner,
                                                served: tuple[Path, int]) -> None:
    path, member = served
    assert json_lines(run(runner, "-d", path, "groups", "list", "--json").stdout) == [
        {"name": GROUP, "kind": "queue"}]
    (described,) = json_lines(run(runner, "-d", path, "groups", "describe", GROUP,
                                  "--json").stdout)
    partitions = described.pop("partitions")
    assert described == {
        "group": GROUP, "kind": "queue", "state": "Stable", "generation": 0, "total_lag": 18,
        "members": [{"member_id": str(member), "client_id": "", "host": socket.gethostname(),
                     "pid": os.getpid(), "assignment": [{"topic": TOPIC, "partition": 0}]}],
    }
    assert [(p["partition"], p["committed_offset"], p["ready"], p["in_flight"], p["delayed"],
             p["expired"], p["dead_lettered"]) for p in partitions] == [(0, 10, 12, 5, 1, 0, 2)]
    human = run(runner, "-d", path, "groups", "describe", GROUP).stdout
    assert human.splitlines()[0] == "queue group work: Stable, 1 workers, lag 18"
    assert "workers" in human and str(member) in human
    assert [line.split() for line in human.splitlines() if "READY" in line] == [
        ["TOPIC", "PARTITION", "POSITION", "LOG-END-OFFSET", "LAG", "READY", "IN-FLIGHT",
         "DELAYED", "DEAD-LETTERED", "AGE"]]  # no EXPIRED column: nothing expired


def test_seek_and_delete_a_queue_group(runner: CliRunner, built: Path) -> None:
    with mqlog.open(built) as log:
        add_jobs(log)
    with mqlog.open(built) as log, log.queue(GROUP, TOPIC) as worker:
        for message in worker.receive(max_messages=20):
            message.ack()
        busy = run(runner, "-d", built, "seek", GROUP, "-t", TOPIC, "--to-offset", "5",
                   "--execute")
        assert busy.exit_code != 0 and "live members" in busy.stderr
    result = run(runner, "-d", built, "seek", GROUP, "-t", TOPIC, "-p", "0", "--to-offset", "5",
                 "--execute", "--json")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout) == [
        {"group": GROUP, "topic": TOPIC, "partition": 0, "current_offset": 20, "new_offset": 5,
         "executed": True}]
    with mqlog.open(built) as log, log.queue(GROUP, TOPIC) as worker:
        assert [m.offset for m in worker.receive(max_messages=2)] == [5, 6]
    deleted = run(runner, "-d", built, "groups", "delete", GROUP, "--yes")
    assert (deleted.exit_code, deleted.stdout) == (0, "deleted group 'work'\n")
    assert run(runner, "-d", built, "groups", "list").stdout == ""


def test_describe_shows_expired_records_when_there_are_any(runner: CliRunner,
                                                           built: Path) -> None:
    with mqlog.open(built) as log:
        log.create_topic("quotes", message_ttl_ms=1)
        log.append("quotes", 0, [b"stale-1", b"stale-2", b"stale-3"])
        time.sleep(0.01)  # ten times their time to live
        with log.queue("prices", "quotes") as worker:
            assert [m.value for m in worker.receive(max_messages=10)] == []
    human = run(runner, "-d", built, "groups", "describe", "prices").stdout
    [heading] = [line.split() for line in human.splitlines() if "READY" in line]
    assert heading == ["TOPIC", "PARTITION", "POSITION", "LOG-END-OFFSET", "LAG", "READY",
                       "IN-FLIGHT", "DELAYED", "EXPIRED", "DEAD-LETTERED", "AGE"]
    [row] = [line.split() for line in human.splitlines() if line.startswith("quotes ")]
    assert row[1:10] == ["0", "3", "3", "0", "0", "0", "0", "3", "0"]
