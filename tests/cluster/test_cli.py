"""The command line on a Kafka cluster (``mqlog --dir kafka://HOST:PORT ...``), against
``mqlog serve`` and Tansu: tail (with -f), seek, lag (with --watch), replay, topics,
groups; the commands that need a log directory exit 2 naming the operation."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner, Result

import mqlog
from mqlog.cli import app
from mqlog.consumer import TopicPartition

from .conftest import GROUP_OPTIONS, Broker, skip_on_tansu, unique
from .test_consumers import poll_until

#: Longest a real mqlog process may take to print what a test waits for.
PROCESS_TIMEOUT_S = 60.0


def run(broker: Broker, *args: str) -> Result:
    return CliRunner().invoke(app, ["--dir", broker.url, *args])


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def log(broker: Broker) -> Iterator[mqlog.Log]:
    with mqlog.open(broker.url) as opened:
        yield opened


def sent(log: mqlog.Log, topic: str, values: list[str], partition: int = 0) -> None:
    """Send ``values`` one at a time (one record per batch: Tansu's end offsets hold)."""
    with log.producer() as producer:
        for value in values:
            producer.send(topic, value, partition=partition).result(30)


class Running:
    """``mqlog --dir URL ARGS`` as a real process (stdout unbuffered), its lines
    collected by a thread."""

    def __init__(self, broker: Broker, *args: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mqlog.cli", "--dir", broker.url, *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def read_lines(self, count: int) -> list[str]:
        """The next ``count`` lines printed (fails after PROCESS_TIMEOUT_S)."""
        deadline = time.monotonic() + PROCESS_TIMEOUT_S
        lines: list[str] = []
        while len(lines) < count:
            try:
                lines.append(self.lines.get(timeout=max(deadline - time.monotonic(), 0)))
            except queue.Empty:
                raise AssertionError(f"got {lines!r}; stderr: {self.stop()[1]}") from None
        return lines

    def stop(self) -> tuple[int, str]:
        """Ctrl-C the process and wait for it: (exit code, stderr)."""
        process = self.process
        process.send_signal(signal.SIGINT)
        try:
            assert process.stderr is not None
            process.wait(timeout=PROCESS_TIMEOUT_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        return process.returncode, process.stderr.read()


def test_topics_commands(broker: Broker) -> None:
    name = unique("cli-topics")
    created = run(broker, "topics", "create", name, "-p", "2", "--retention-ms", "60000",
                  "--json")
    assert created.exit_code == 0, created.output
    assert json_lines(created.stdout)[0]["created"] is True
    assert name in run(broker, "topics", "list").stdout.split()
    (described,) = json_lines(run(broker, "topics", "describe", name, "--json").stdout)
    assert [p["end_offset"] for p in described["partitions"]] == [0, 0]
    assert described["config"]["retention_ms"] == 60000
    again = run(broker, "topics", "create", name, "-p", "2", "--retention-ms", "60000",
                "--if-not-exists")
    assert again.exit_code == 0 and "already exists" in again.stdout
    altered = run(broker, "topics", "alter", name, "-p", "3")
    if broker.kind == "tansu":  # Tansu 0.6.0 does not offer CreatePartitions
        assert altered.exit_code == 2 and "not supported" in altered.output
    else:
        assert altered.exit_code == 0, altered.output
    assert run(broker, "topics", "delete", name, "-y").exit_code == 0
    missing = run(broker, "topics", "describe", name)
    assert missing.exit_code == 3 and "unknown topic" in missing.output


def test_tail_last_records_and_from_the_beginning(broker: Broker, log: mqlog.Log) -> None:
    name = unique("cli-tail")
    log.create_topic(name, 1)
    sent(log, name, [f"v{n}" for n in range(5)])
    last = run(broker, "tail", name, "-n", "2", "--format", "json")
    assert last.exit_code == 0, last.output
    assert [(r["offset"], r["value"]) for r in json_lines(last.stdout)] == [
        (3, "djM="), (4, "djQ=")]  # base64 of v3, v4
    everything = run(broker, "tail", name, "--from-beginning", "--format", "raw")
    assert everything.stdout.split() == [f"v{n}" for n in range(5)]
    window = run(broker, "tail", name, "--offset", "1", "--to-offset", "3", "--format", "raw")
    assert window.stdout.split() == ["v1", "v2"]


def test_tail_follow_prints_records_as_they_come(broker: Broker, log: mqlog.Log) -> None:
    name = unique("cli-follow")
    log.create_topic(name, 1)
    sent(log, name, ["before"])
    tail = Running(broker, "tail", name, "-n", "1", "-f", "--format", "raw")
    try:
        assert tail.read_lines(1) == ["before\n"]
        sent(log, name, ["after-1", "after-2"])
        assert tail.read_lines(2) == ["after-1\n", "after-2\n"]
    finally:
        code, stderr = tail.stop()
    assert code == 0, stderr


def committed_group(log: mqlog.Log, topic: str) -> str:
    """A group with members gone and offsets committed: 1 of ``topic``'s 4 records."""
    group = unique("cli-group")
    with log.consumer(group, topic, **GROUP_OPTIONS) as consumer:
        poll_until(consumer, 4)
        consumer.commit({TopicPartition(topic, 0): 1})
    return group


def test_groups_lag_and_seek(broker: Broker, log: mqlog.Log) -> None:
    name = unique("cli-groups")
    log.create_topic(name, 1)
    sent(log, name, ["a", "b", "c", "d"])
    group = committed_group(log, name)
    listed = run(broker, "groups", "list", "--json")
    assert {"name": group, "kind": "consumer"} in json_lines(listed.stdout)
    (described,) = json_lines(run(broker, "groups", "describe", group, "--json").stdout)
    assert (described["state"], described["total_lag"]) == ("Empty", 3)
    lag = run(broker, "lag", group, "--json")
    assert lag.exit_code == 0, lag.output
    (row, total) = json_lines(lag.stdout)
    assert (row["current_offset"], row["log_end_offset"], row["lag"]) == (1, 4, 3)
    assert total["total_lag"] == 3
    over = run(broker, "lag", group, "--max-lag", "2")
    assert over.exit_code == 1
    dry = run(broker, "seek", group, "--topic", name, "--to-earliest", "--json")
    assert [(r["current_offset"], r["new_offset"], r["executed"])
            for r in json_lines(dry.stdout)] == [(1, 0, False)]
    done = run(broker, "seek", group, "--topic", name, "--shift-by", "2", "--execute")
    assert done.exit_code == 0, done.output
    assert log.describe_group(group).partitions[0].committed_offset == 3
    deleted = run(broker, "groups", "delete", group, "-y")
    assert deleted.exit_code == 0, deleted.output
    assert run(broker, "lag", group).exit_code == 3


def test_lag_watch_samples_until_ctrl_c(broker: Broker, log: mqlog.Log) -> None:
    name = unique("cli-watch")
    log.create_topic(name, 1)
    sent(log, name, ["a", "b", "c", "d"])
    group = committed_group(log, name)
    watch = Running(broker, "lag", group, "--watch", "0.5", "--json")
    try:
        first = [json.loads(line) for line in watch.read_lines(2)]
        sent(log, name, ["e"])
        for _sample in range(20):  # a sample or two may predate the send
            row, _total = (json.loads(line) for line in watch.read_lines(2))
            if row["lag"] == 4:
                break
    finally:
        code, stderr = watch.stop()
    assert code == 0, stderr
    assert first[0]["lag"] == 3
    assert row["lag"] == 4 and "in_per_s" in row


def test_replay_into_another_topic(broker: Broker, log: mqlog.Log) -> None:
    name = unique("cli-replay")
    log.create_topic(name, 1)
    sent(log, name, ["r0", "r1", "r2"])
    target = unique("cli-replayed")
    result = run(broker, "replay", name, "--from-offset", "1", "--to-topic", target, "--json")
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout)[-1]["records"] == 2
    copied = log.read(target, 0, 0)
    assert [r.value for r in copied] == [b"r1", b"r2"]
    assert dict(copied[0].headers or {})["mqlog.origin"] == f"{name}/0/1".encode()


@pytest.mark.parametrize("args, operation", [
    (["verify"], "mqlog verify"),
    (["repair"], "mqlog repair"),
    (["serve"], "mqlog serve"),
    (["queues", "describe", "workers"], "describe_queue"),
    (["dlq", "list", "orders.dlq"], "dead_letters"),
])
def test_commands_a_cluster_cannot_run_exit_2(broker: Broker, args: list[str],
                                              operation: str) -> None:
    result = run(broker, *args)
    assert result.exit_code == 2, result.output
    assert operation in result.output and "not supported" in result.output


def test_produce_and_consume(broker: Broker, log: mqlog.Log) -> None:
    name = unique("cli-produce")
    log.create_topic(name, 1)
    produced = CliRunner().invoke(app, ["--dir", broker.url, "produce", name], input="a\nb\n")
    assert produced.exit_code == 0, produced.output
    assert [r.value for r in log.read(name, 0, 0)] == [b"a", b"b"]
    skip_on_tansu(broker, "a group member gets its first assignment only after the rebalance "
                          "timeout, which mqlog consume leaves at Kafka's 5 minutes")
    consumed = run(broker, "consume", name, "--group", unique("cli-consume"),
                   "--from-beginning", "--max-records", "2", "--format", "raw")
    assert consumed.exit_code == 0, consumed.output
    assert consumed.stdout.split() == ["a", "b"]
