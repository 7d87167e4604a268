"""``mqlog queues pending|claim|receive|ack``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import mqlog
from tests.cli._cli import finish, json_lines, run, start


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def held(tmp_path: Path):
    """A log whose queue group 'w' has a live worker holding offsets 0 and 1 of 'jobs'."""
    log = mqlog.open(tmp_path, durability="none")
    log.create_topic("jobs")
    log.append("jobs", 0, [b"a", b"b", b"c"])
    worker = log.queue("w", ["jobs"], ack_timeout_s=600)
    assert len(worker.receive(max_messages=2)) == 2
    yield tmp_path, worker
    log.close()


def test_pending_summary_and_details(runner, held):
    directory, worker = held
    summary = run(runner, "-d", directory, "queues", "pending", "w", "--json")
    assert summary.exit_code == 0, summary.output
    [document] = json_lines(summary.stdout)
    assert (document["count"], document["members"]) == (
        2, [{"member_id": worker.member_id, "count": 2}])
    assert document["partitions"] == [{"topic": "jobs", "partition": 0, "count": 2,
                                       "first_offset": 0, "last_offset": 1}]
    details = run(runner, "-d", directory, "queues", "pending", "w", "--details", "--json")
    assert [(m["offset"], m["member_id"], m["delivery_count"], m["lock_expired"])
            for m in json_lines(details.stdout)] == [
        (0, worker.member_id, 1, False), (1, worker.member_id, 1, False)]
    limited = run(runner, "-d", directory, "queues", "pending", "w", "-n", "1", "--json")
    assert len(json_lines(limited.stdout)) == 1
    none_idle = run(runner, "-d", directory, "queues", "pending", "w", "--idle", "1h", "--json")
    assert none_idle.exit_code == 0 and none_idle.stdout == ""
    table = run(runner, "-d", directory, "queues", "pending", "w")
    assert "2 pending in queue group w" in table.stdout
    unknown = run(runner, "-d", directory, "queues", "pending", "nope")
    assert unknown.exit_code == 3 and "unknown queue group 'nope'" in unknown.stderr


def test_claim_makes_idle_messages_available_at_once(runner, held):
    directory, worker = held
    result = run(runner, "-d", directory, "queues", "claim", "w", "--idle", "0", "-n", "1",
                 "--json")
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout) == [
        {"topic": "jobs", "partition": 0, "offset": 0, "delivery_count": 2}]
    with mqlog.open(directory) as log:
        assert [m.offset for m in log.pending("w")] == [1]  # 0 is ready again
        other = log.queue("w", ["jobs"])
        assert [(m.offset, m.delivery_count) for m in other.receive(max_messages=1)] == [
            (0, 3)]
    not_idle = run(runner, "-d", directory, "queues", "claim", "w", "--idle", "1h")
    assert not_idle.exit_code == 0 and "claimed 0 messages" in not_idle.stdout
    bad = run(runner, "-d", directory, "queues", "claim", "w", "--idle", "soon")
    assert bad.exit_code == 2


def test_receive_and_ack_by_receipt(runner, held):
    directory, _worker = held
    result = run(runner, "-d", directory, "queues", "receive", "w", "jobs", "-n", "5",
                 "--visibility", "60", "--json")
    assert result.exit_code == 0, result.output
    [message] = json_lines(result.stdout)  # 0 and 1 are held by the worker
    assert (message["offset"], message["value"], message["delivery_count"]) == (2, "Yw==", 1)
    receipt = message["receipt"]
    assert receipt.startswith("jobs:0:2:1:")
    nothing = run(runner, "-d", directory, "queues", "receive", "w", "jobs")
    assert nothing.exit_code == 0 and nothing.stdout == ""  # held by its receipt
    acked = run(runner, "-d", directory, "queues", "ack", "w", receipt)
    assert acked.exit_code == 0 and "acked 1 messages" in acked.stdout
    with mqlog.open(directory) as log:
        assert [m.offset for m in log.pending("w")] == [0, 1]
    stale = run(runner, "-d", directory, "queues", "ack", "w", "jobs:0:1:1:5")
    assert stale.exit_code == 4 and "stale receipt" in stale.stderr
    bad = run(runner, "-d", directory, "queues", "ack", "w", "not-a-receipt")
    assert bad.exit_code == 2 and "not a receipt handle" in bad.stderr


def test_receive_prints_receipt_key_and_value(runner, tmp_path):
    with mqlog.open(tmp_path) as log:
        log.create_topic("jobs")
        log.append("jobs", 0, [mqlog.Record(b"v", key=b"k")])
    result = run(runner, "-d", tmp_path, "queues", "receive", "w", "jobs", "--visibility", "5s")
    assert result.exit_code == 0, result.output
    receipt, key, value = result.stdout.rstrip("\n").split("\t")
    assert (receipt.split(":")[:4], key, value) == (["jobs", "0", "0", "1"], "k", "v")


def test_receipts_work_across_processes(tmp_path):
    """A script receives in one process and acks in another, after the first ended."""
    with mqlog.open(tmp_path) as log:
        log.create_topic("jobs")
        log.append("jobs", 0, [b"x", b"y"])
    code, out, err = finish(start("-d", tmp_path, "queues", "receive", "w", "jobs", "-n", "2",
                                  "--visibility", "600", "--json"))
    assert code == 0, err
    receipts = [document["receipt"] for document in json_lines(out)]
    assert len(receipts) == 2
    code, out, err = finish(start("-d", tmp_path, "queues", "ack", "w", *receipts))
    assert (code, out.strip()) == (0, "acked 2 messages"), err
    with mqlog.open(tmp_path) as log:
        assert log.pending_summary("w").count == 0
        assert log.queue("w", "jobs").receive(max_messages=10) == []
