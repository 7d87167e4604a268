"""Consumer groups through real Kafka clients against a real server process:
librdkafka (confluent-kafka) and kafka-python, with mqlog's own view of the
same groups (``Log.describe_group``, ``Log.reset_offsets``, embedded consumers).

Tests that read records need the Fetch handler in the server's API table;
until it is registered they are skipped with that reason. Offsets are
committed beforehand where a client would otherwise ask ListOffsets for a
starting position.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

import mqlog
from mqlog.consumer import TopicPartition
from mqlog.errors import ConfigError, GroupNotEmptyError
from mqlog.server.kafka._handlers import default_table
from tests.server._serve import REPO_ROOT, RunningServer

#: Longest any step of these tests waits (a loaded machine); never an assertion
#: about speed except where a test says so.
WAIT_S = 30.0
needs_fetch = pytest.mark.skipif(
    default_table().get(1) is None,
    reason="Fetch is not registered in this branch's API table yet (it comes with main)")


def wait_for(condition: Callable[[], bool], what: str, step: Callable[[], object] = lambda: None,
             timeout_s: float = WAIT_S) -> float:
    """Run ``step`` until ``condition`` holds; the seconds it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        step()
    return time.monotonic() - start


@pytest.fixture
def log(kafka_server: RunningServer) -> Iterator[mqlog.Log]:
    with mqlog.open(kafka_server.directory) as opened:
        opened.create_topic("t", 4)
        yield opened


def rdkafka_consumer(server: RunningServer, group: str, **config: object) -> object:
    from confluent_kafka import Consumer

    return Consumer({"bootstrap.servers": server.address, "group.id": group,
                     "enable.auto.commit": False, "heartbeat.interval.ms": 300,
                     "session.timeout.ms": 6000, "log_level": 0, **config})


def owned(consumer: object) -> set[tuple[str, int]]:
    return {(tp.topic, tp.partition) for tp in consumer.assignment()}  # type: ignore[attr-defined]


def in_mqlog(log: mqlog.Log, group: str) -> dict[str, set[tuple[str, int]]]:
    """Member id -> partitions, as mqlog describes the group (none before it exists)."""
    if group not in log.list_groups():
        return {}
    return {m.member_id: {(tp.topic, tp.partition) for tp in m.assignment}
            for m in log.describe_group(group).members}


ALL = {("t", n) for n in range(4)}


@pytest.mark.parametrize("assignor", ["range", "roundrobin", "cooperative-sticky"])
def test_librdkafka_consumers_share_the_partitions_and_take_over_on_close(
        kafka_server: RunningServer, log: mqlog.Log, assignor: str) -> None:
    consumers = [rdkafka_consumer(kafka_server, "g", **{
        "partition.assignment.strategy": assignor}) for _ in range(2)]
    for consumer in consumers:
        consumer.subscribe(["t"])

    def poll_all() -> None:
        for consumer in consumers:
            consumer.poll(0.05)

    wait_for(lambda: all(owned(c) for c in consumers) and owned(consumers[0]) | owned(
        consumers[1]) == ALL and not owned(consumers[0]) & owned(consumers[1]),
        "both consumers own a share", poll_all)
    assert sorted(map(sorted, in_mqlog(log, "g").values())) == sorted(
        sorted(owned(c)) for c in consumers)
    assert log.describe_group("g").state == "Stable"
    consumers[1].close()
    wait_for(lambda: owned(consumers[0]) == ALL, "the other consumer takes over",
             lambda: consumers[0].poll(0.05))
    wait_for(lambda: list(in_mqlog(log, "g").values()) == [ALL], "mqlog sees one owner",
             lambda: consumers[0].poll(0.05))
    consumers[0].close()
    assert log.describe_group("g").state == "Empty"


def test_a_static_member_started_again_takes_over_at_once_and_fences_the_old(
        kafka_server: RunningServer, log: mqlog.Log) -> None:
    """KIP-345 with librdkafka: a second process with the same group.instance.id
    (a restarted pod whose predecessor hangs) takes the partitions well within
    the 30 s session timeout, without a rebalance, and the first is told it is
    fenced (fatal)."""
    errors: list[object] = []

    def poll_first() -> None:  # librdkafka reports the fencing as a fatal poll error
        message = first.poll(0.05)
        if message is not None and message.error() is not None:
            errors.append(message.error())

    static = {"group.instance.id": "worker-1", "session.timeout.ms": 30_000}
    first = rdkafka_consumer(kafka_server, "static", **static)
    first.subscribe(["t"])
    wait_for(lambda: owned(first) == ALL, "the static member owns every partition",
             lambda: first.poll(0.05))
    generation = log.describe_group("static").generation
    second = rdkafka_consumer(kafka_server, "static", **static)
    second.subscribe(["t"])
    took = wait_for(lambda: owned(second) == ALL, "the new process takes over",
                    lambda: (second.poll(0.05), poll_first()))
    assert took < 15.0  # not the session timeout: the instance's old member is fenced
    wait_for(lambda: any("fenced" in str(error).lower() for error in errors),
             "the old process is told it is fenced", poll_first)
    described = log.describe_group("static")
    assert [sorted((tp.topic, tp.partition) for tp in m.assignment)
            for m in described.members] == [sorted(ALL)]
    assert described.generation == generation  # it took the member's place: no rebalance
    for consumer in (first, second):
        consumer.close()


_CHILD = """
import sys
from confluent_kafka import Consumer
consumer = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "g",
                     "session.timeout.ms": 2000, "heartbeat.interval.ms": 300,
                     "enable.auto.commit": False, "log_level": 0})
consumer.subscribe(["t"])
while True:
    consumer.poll(0.05)
    if consumer.assignment():
        print("assigned", flush=True)
"""


def test_a_killed_consumer_is_removed_within_its_session_timeout(
        kafka_server: RunningServer, log: mqlog.Log) -> None:
    child = subprocess.Popen([sys.executable, "-c", _CHILD, kafka_server.address],
                             stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        survivor = rdkafka_consumer(kafka_server, "g")
        survivor.subscribe(["t"])
        wait_for(lambda: len(in_mqlog(log, "g")) == 2 and owned(survivor) and owned(
            survivor) != ALL, "two members sharing", lambda: survivor.poll(0.05))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        took = wait_for(lambda: owned(survivor) == ALL, "the survivor takes every partition",
                        lambda: survivor.poll(0.05))
        assert list(in_mqlog(log, "g").values()) == [ALL]
        assert took < 2.0 + 5.0  # the session timeout, then one rejoin round
        survivor.close()
    finally:
        child.kill()
        child.wait()


def test_commits_are_mqlogs_committed_offsets_both_ways(kafka_server: RunningServer,
                                                        log: mqlog.Log) -> None:
    from confluent_kafka import TopicPartition as KafkaPartition

    with log.producer() as producer:
        for number in range(12):
            producer.send("t", f"v{number}", partition=number % 4)
    log.alter_offsets("g", {TopicPartition("t", n): 1 for n in range(4)})  # embedded
    consumer = rdkafka_consumer(kafka_server, "g")
    consumer.subscribe(["t"])
    wait_for(lambda: owned(consumer) == ALL, "assigned", lambda: consumer.poll(0.05))
    asked = [KafkaPartition("t", n) for n in range(4)]
    assert [tp.offset for tp in consumer.committed(asked, timeout=10)] == [1, 1, 1, 1]
    consumer.commit(offsets=[KafkaPartition("t", 2, 2)], asynchronous=False)
    description = log.describe_group("g")
    committed = {p.partition: p.committed_offset for p in description.partitions}
    assert committed == {0: 1, 1: 1, 2: 2, 3: 1}
    assert description.total_lag == 12 - 5
    lag = subprocess.run([sys.executable, "-m", "mqlog.cli", "--dir",
                          os.fspath(kafka_server.directory), "lag", "g"],
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=60,
                         env=dict(os.environ, PYTHONPATH=os.fspath(REPO_ROOT)))
    assert lag.returncode == 0, lag.stderr
    (member,) = description.members
    assert "Stable" in lag.stdout and member.member_id in lag.stdout
    assert "/127.0.0.1" in lag.stdout
    with pytest.raises(GroupNotEmptyError):
        log.reset_offsets("g", "t", to="earliest")
    consumer.close()
    log.reset_offsets("g", "t", to="latest")
    again = rdkafka_consumer(kafka_server, "g")
    ends = [log.end_offset("t", n) for n in range(4)]
    assert [tp.offset for tp in again.committed(asked, timeout=10)] == ends
    again.close()


def test_assign_without_membership_commits_while_the_group_is_empty(
        kafka_server: RunningServer, log: mqlog.Log) -> None:
    from confluent_kafka import TopicPartition as KafkaPartition

    with log.producer() as producer:
        producer.send("t", "one", partition=0)
    consumer = rdkafka_consumer(kafka_server, "solo")
    consumer.assign([KafkaPartition("t", 0, 0)])
    consumer.commit(offsets=[KafkaPartition("t", 0, 1)], asynchronous=False)
    assert [p.committed_offset for p in log.describe_group("solo").partitions] == [1]
    consumer.close()


def test_mixed_membership_is_refused_both_ways(kafka_server: RunningServer,
                                               log: mqlog.Log) -> None:
    from confluent_kafka import KafkaError

    kafka = rdkafka_consumer(kafka_server, "g")
    kafka.subscribe(["t"])
    wait_for(lambda: owned(kafka) == ALL, "the Kafka client owns the topic",
             lambda: kafka.poll(0.05))
    embedded = log.consumer(group="g")
    with pytest.raises(ConfigError, match="clients of mqlog serve"):
        embedded.subscribe("t")
    embedded.close()
    kafka.close()

    local = log.consumer(group="local")
    local.subscribe("t")
    refused = rdkafka_consumer(kafka_server, "local")
    refused.subscribe(["t"])
    errors: list[object] = []

    def poll() -> None:
        message = refused.poll(0.05)
        if message is not None and message.error():
            errors.append(message.error().code())

    wait_for(lambda: bool(errors), "the Kafka client is told", poll)
    assert errors[0] == KafkaError.INCONSISTENT_GROUP_PROTOCOL
    assert not owned(refused)
    assert [m.pid for m in log.describe_group("local").members] == [os.getpid()]
    refused.close()
    local.close()


def test_admin_clients_list_describe_and_delete_groups(kafka_server: RunningServer,
                                                       log: mqlog.Log) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException
    from confluent_kafka.admin import AdminClient
    from kafka import KafkaAdminClient

    with log.producer() as producer:
        for number in range(4):
            for _ in range(3):
                producer.send("t", "v", partition=number)
    log.alter_offsets("g", {TopicPartition("t", n): n for n in range(4)})
    consumer = rdkafka_consumer(kafka_server, "g")
    consumer.subscribe(["t"])
    wait_for(lambda: owned(consumer) == ALL, "assigned", lambda: consumer.poll(0.05))
    admin = AdminClient({"bootstrap.servers": kafka_server.address})
    listed = admin.list_consumer_groups().result(timeout=10)
    assert {g.group_id for g in listed.valid} == {"g"}
    described = admin.describe_consumer_groups(["g"])["g"].result(timeout=10)
    assert str(described.state).endswith("STABLE")
    (member,) = described.members
    assert {(tp.topic, tp.partition) for tp in member.assignment.topic_partitions} == ALL
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("g")])
    result = offsets["g"].result(timeout=10)
    assert {tp.partition: tp.offset for tp in result.topic_partitions} == {0: 0, 1: 1, 2: 2,
                                                                          3: 3}
    with pytest.raises(KafkaException):  # a group with members cannot be deleted
        admin.delete_consumer_groups(["g"])["g"].result(timeout=10)

    python_admin = KafkaAdminClient(bootstrap_servers=kafka_server.address)
    try:
        assert [(g["group_id"], g["group_state"]) for g in python_admin.list_groups()] == [
            ("g", "Stable")]
        python_described = python_admin.describe_groups(["g"])["g"]
        assert python_described["group_state"] == "Stable"
        assert len(python_described["members"]) == 1
        python_offsets = python_admin.list_group_offsets({"g": None})["g"]
        assert {tp.partition: meta.offset for tp, meta in python_offsets.items()} == {
            0: 0, 1: 1, 2: 2, 3: 3}
        consumer.close()
        assert python_admin.delete_groups(["g"]) == {"g": "OK"}
    finally:
        python_admin.close()
    assert "g" not in log.list_groups()


@needs_fetch
@pytest.mark.parametrize("client", ["confluent-kafka", "kafka-python"])
def test_a_subscriber_gets_its_first_record_within_a_second(
        kafka_server: RunningServer, log: mqlog.Log, client: str) -> None:
    with log.producer() as producer:
        for number in range(20):
            producer.send("t", f"v{number}", key=f"k{number}")
    log.alter_offsets("g", {TopicPartition("t", n): 0 for n in range(4)})
    if client == "confluent-kafka":
        consumer = rdkafka_consumer(kafka_server, "g")
        start = time.monotonic()
        consumer.subscribe(["t"])
        first = None
        while first is None and time.monotonic() - start < WAIT_S:
            first = consumer.poll(0.02)
        took = time.monotonic() - start
        assert first is not None and first.error() is None
        consumer.commit(first, asynchronous=False)
        consumer.close()
    else:
        from kafka import KafkaConsumer

        python_consumer = KafkaConsumer(bootstrap_servers=kafka_server.address, group_id="g",
                                        enable_auto_commit=False)
        start = time.monotonic()
        python_consumer.subscribe(["t"])
        records: dict = {}
        while not records and time.monotonic() - start < WAIT_S:
            records = python_consumer.poll(timeout_ms=20)
        took = time.monotonic() - start
        assert records
        python_consumer.commit()
        python_consumer.close()
    assert took <= 1.0, f"first record after {took:.2f} s"
    assert log.describe_group("g").total_lag < 20


@needs_fetch
def test_aiokafka_consumers_share_read_and_commit(kafka_server: RunningServer,
                                                  log: mqlog.Log) -> None:
    import asyncio

    from aiokafka import AIOKafkaConsumer

    with log.producer() as producer:
        for number in range(8):
            producer.send("t", f"v{number}", partition=number % 4)
    log.alter_offsets("a", {TopicPartition("t", n): 0 for n in range(4)})

    async def run() -> tuple[list[bytes], list[set[tuple[str, int]]]]:
        consumers = [AIOKafkaConsumer("t", bootstrap_servers=kafka_server.address,
                                      group_id="a", enable_auto_commit=False,
                                      heartbeat_interval_ms=300) for _ in range(2)]
        for consumer in consumers:
            await consumer.start()
        got: list[bytes] = []
        start = time.monotonic()
        while len(got) < 8 and time.monotonic() - start < WAIT_S:
            for consumer in consumers:
                for messages in (await consumer.getmany(timeout_ms=50)).values():
                    got += [m.value for m in messages]
        shares = [{(tp.topic, tp.partition) for tp in c.assignment()} for c in consumers]
        for consumer in consumers:
            await consumer.commit()
            await consumer.stop()
        return got, shares

    got, shares = asyncio.run(run())
    assert sorted(got) == sorted(f"v{n}".encode() for n in range(8))
    assert shares[0] | shares[1] == ALL and not shares[0] & shares[1]
    description = log.describe_group("a")
    assert description.state == "Empty"
    assert {p.partition: p.committed_offset for p in description.partitions} == {
        n: 2 for n in range(4)}
    assert description.total_lag == 0
