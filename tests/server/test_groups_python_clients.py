"""Consumer groups of kafka-python and aiokafka against a real server process:
aiokafka's assignors share the partitions, a member that leaves or is killed
hands its partitions over, and lag reads through their admin clients.
(kafka-python's poll() joins a group synchronously, so two of its consumers
polled from one thread wait on each other's join: its second member runs in
a process of its own.)
(librdkafka's groups: test_kafka_groups.py.)"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

import mqlog
from tests.server._serve import REPO_ROOT, RunningServer
from tests.server.test_kafka_groups import ALL, WAIT_S, in_mqlog, wait_for


@pytest.fixture
def log(kafka_server: RunningServer) -> Iterator[mqlog.Log]:
    with mqlog.open(kafka_server.directory) as opened:
        opened.create_topic("t", 4)
        yield opened


def kp_consumer(server: RunningServer, assignor: object):
    from kafka import KafkaConsumer

    return KafkaConsumer("t", bootstrap_servers=server.address, group_id="kp",
                         enable_auto_commit=False, heartbeat_interval_ms=300,
                         session_timeout_ms=6000, partition_assignment_strategy=[assignor])


def kp_owned(consumer) -> set[tuple[str, int]]:
    return {(tp.topic, tp.partition) for tp in consumer.assignment()}


_KP_CHILD = """
import sys
from kafka import KafkaConsumer
consumer = KafkaConsumer("t", bootstrap_servers=sys.argv[1], group_id="kp",
                         enable_auto_commit=False, heartbeat_interval_ms=300,
                         session_timeout_ms=2000)
while True:
    consumer.poll(timeout_ms=50)
"""


def test_a_killed_kafka_python_consumer_hands_its_partitions_over(kafka_server, log):
    child = subprocess.Popen([sys.executable, "-c", _KP_CHILD, kafka_server.address],
                             cwd=REPO_ROOT, stderr=subprocess.DEVNULL)
    survivor = kp_consumer(kafka_server, _range())
    try:
        wait_for(lambda: len(in_mqlog(log, "kp")) == 2 and kp_owned(survivor) and kp_owned(
            survivor) != ALL, "two members sharing", lambda: survivor.poll(timeout_ms=50))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        wait_for(lambda: kp_owned(survivor) == ALL, "the survivor takes every partition",
                 lambda: survivor.poll(timeout_ms=50))
        assert list(in_mqlog(log, "kp").values()) == [ALL]
    finally:
        survivor.close()
        child.kill()
        child.wait()


_KP_STATIC_CHILD = """
import sys
from kafka import KafkaConsumer
consumer = KafkaConsumer("t", bootstrap_servers=sys.argv[1], group_id="kp-static",
                         group_instance_id="kp-1", enable_auto_commit=False,
                         heartbeat_interval_ms=300, session_timeout_ms=30000)
while True:
    consumer.poll(timeout_ms=50)
    if consumer.assignment():
        print("assigned", flush=True)
"""


def test_a_restarted_static_kafka_python_member_takes_its_place_at_once(kafka_server, log):
    """A static member (group_instance_id) killed and started again: the new
    process replaces the dead member when it joins, well within the dead one's
    30 s session timeout."""
    from kafka import KafkaConsumer

    child = subprocess.Popen([sys.executable, "-c", _KP_STATIC_CHILD, kafka_server.address],
                             cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True)
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], WAIT_S)
        assert ready and child.stdout.readline() == "assigned\n", "the first never joined"
        generation = log.describe_group("kp-static").generation
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        restarted = KafkaConsumer("t", bootstrap_servers=kafka_server.address,
                                  group_id="kp-static", group_instance_id="kp-1",
                                  enable_auto_commit=False, heartbeat_interval_ms=300,
                                  session_timeout_ms=30000)
        try:
            took = wait_for(lambda: kp_owned(restarted) == ALL, "the restarted member owns all",
                            lambda: restarted.poll(timeout_ms=50))
            assert took < 15.0  # not the dead member's 30 s session timeout
            assert list(in_mqlog(log, "kp-static").values()) == [ALL]
            assert log.describe_group("kp-static").generation == generation  # no rebalance
        finally:
            restarted.close()
    finally:
        child.kill()
        child.wait()


def _range():
    from kafka.coordinator.assignors.range import RangePartitionAssignor

    return RangePartitionAssignor


@pytest.mark.parametrize("assignor", ["range", "roundrobin", "sticky"])
def test_aiokafka_assignors_take_over_and_admin_lag(kafka_server, log, assignor):
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

    chosen = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor,
              "sticky": StickyPartitionAssignor}[assignor]
    with log.producer() as producer:
        for number in range(8):
            producer.send("t", f"v{number}", partition=number % 4)

    async def run() -> dict:
        consumers = [AIOKafkaConsumer("t", bootstrap_servers=kafka_server.address,
                                      group_id="aio", enable_auto_commit=False,
                                      auto_offset_reset="earliest", heartbeat_interval_ms=300,
                                      partition_assignment_strategy=(chosen,))
                     for _ in range(2)]
        for consumer in consumers:
            await consumer.start()
        try:
            while True:  # both own a share
                for consumer in consumers:
                    await consumer.getmany(timeout_ms=50)
                shares = [{(tp.topic, tp.partition) for tp in c.assignment()} for c in consumers]
                if all(shares) and shares[0] | shares[1] == ALL:
                    break
            await consumers[1].stop()
            got = 0
            while {(tp.topic, tp.partition) for tp in consumers[0].assignment()} != ALL or \
                    got < 8:
                for messages in (await consumers[0].getmany(timeout_ms=50)).values():
                    got += len(messages)
                    if got >= 8:
                        await consumers[0].commit()
        finally:
            await consumers[0].stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_server.address)
        await admin.start()
        try:
            return await admin.list_consumer_group_offsets("aio")
        finally:
            await admin.close()

    offsets = asyncio.run(asyncio.wait_for(run(), 60))
    assert {tp.partition: meta.offset for tp, meta in offsets.items()} == {n: 2 for n in range(4)}
    assert log.describe_group("aio").total_lag == 0


def test_kafka_python_commits_are_mqlogs_committed_offsets(kafka_server, log):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KpTopicPartition
    from kafka.structs import OffsetAndMetadata

    with log.producer() as producer:
        for number in range(8):
            producer.send("t", f"v{number}", partition=number % 4)
    consumer = KafkaConsumer("t", bootstrap_servers=kafka_server.address, group_id="kpc",
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             heartbeat_interval_ms=300)
    try:
        got: list[bytes] = []
        wait_for(lambda: len(got) >= 8, "every record",
                 lambda: got.extend(m.value for batch in consumer.poll(timeout_ms=100).values()
                                    for m in batch))
        consumer.commit()
        consumer.commit({KpTopicPartition("t", 0): OffsetAndMetadata(1, "", -1)})
        assert consumer.committed(KpTopicPartition("t", 0)) == 1
    finally:
        consumer.close()
    committed = {p.partition: p.committed_offset for p in log.describe_group("kpc").partitions}
    assert committed == {0: 1, 1: 2, 2: 2, 3: 2}
