"""``mqlog mirror`` to and from Kafka-protocol brokers: ``mqlog serve`` and Tansu 0.6.0.

Each case runs against both (the ``broker`` fixture); where a bug of Tansu's
blocks one, it says so and runs against ``mqlog serve`` only.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from typer.testing import CliRunner

import mqlog
from mqlog import Record, TopicPartition
from tests.cli._cli import finish, run, start
from tests.server._serve import serving

from ._helpers import assert_mirrored, contents, fill, sample_records
from .conftest import Broker, skip_on_tansu, unique

#: Tansu's ListOffsets answers the base offset of a partition's last batch plus one,
#: not its end, once a batch holds several records (docs/cluster.md).
TANSU_END_OFFSETS = ("ListOffsets answers a wrong end offset once a batch holds several "
                     "records, so reads of the broker's topics stop short")


def test_dir_to_broker_and_back(runner: CliRunner, tmp_path: Path, broker: Broker) -> None:
    topic = unique("orders")
    with mqlog.open(tmp_path / "src") as src:
        fill(src, topic, [30, 12, 0])
    result = run(runner, "mirror", tmp_path / "src", broker.url, "--topics", topic)
    assert result.exit_code == 0, result.output
    assert "verified 3 partitions: record counts and checksums equal" in result.output
    with mqlog.open(tmp_path / "src") as src, mqlog.open(broker.url) as cluster:
        for partition in range(3):
            assert contents(cluster, topic, partition, 0, src.end_offset(topic, partition)) == (
                contents(src, topic, partition))
    skip_on_tansu(broker, TANSU_END_OFFSETS)
    back = run(runner, "mirror", broker.url, tmp_path / "back", "--topics", topic)
    assert back.exit_code == 0, back.output
    with mqlog.open(tmp_path / "src") as src, mqlog.open(tmp_path / "back") as copy:
        assert_mirrored(src, copy, topic)


def test_broker_to_dir(runner: CliRunner, tmp_path: Path, broker: Broker) -> None:
    topic = unique("events")
    with mqlog.open(broker.url) as cluster:
        cluster.create_topic(topic, 2)
        with cluster.producer() as producer:  # one record per batch: Tansu's ends are right
            for record in sample_records(1, 15):
                producer.send(topic, record.value, key=record.key, headers=record.headers,
                              partition=record.timestamp % 2, timestamp=record.timestamp
                              ).result()
    result = run(runner, "mirror", broker.url, tmp_path / "dst", "--topics", topic)
    assert result.exit_code == 0, result.output
    assert "mirrored 15 records of 1 topic" in result.output
    with mqlog.open(broker.url) as cluster, mqlog.open(tmp_path / "dst") as dst:
        assert_mirrored(cluster, dst, topic)


def test_group_offsets_translate_to_the_broker(runner: CliRunner, tmp_path: Path,
                                               broker: Broker) -> None:
    topic, group = unique("orders"), unique("billing")
    with mqlog.open(broker.url) as cluster:  # the destination topic has records already
        cluster.create_topic(topic, 2)
        cluster.append(topic, 0, [b"older"])
        cluster.append(topic, 0, [b"older"])
    with mqlog.open(tmp_path / "src") as src:
        fill(src, topic, [10, 4])
        src.alter_offsets(group, {TopicPartition(topic, 0): 6, TopicPartition(topic, 1): 4})
    skip_on_tansu(broker, TANSU_END_OFFSETS + ": committing a translated offset is refused as "
                          "beyond the partition's end")
    result = run(runner, "mirror", tmp_path / "src", broker.url, "--topics", topic, "--groups")
    assert result.exit_code == 0, result.output
    assert f"group {group}: {topic}/0 -> 8, {topic}/1 -> 4" in result.output
    with mqlog.open(broker.url) as cluster:
        offsets = {(p.topic, p.partition): p.committed_offset
                   for p in cluster.describe_group(group).partitions}
        assert offsets == {(topic, 0): 8, (topic, 1): 4}
        assert cluster.read(topic, 0, 8, 1)[0].value == sample_records(0, 10)[6].value


def test_kill_9_then_resume_to_the_broker(tmp_path: Path, broker: Broker) -> None:
    skip_on_tansu(broker, TANSU_END_OFFSETS + ": the resume reads the destination past the "
                          "last checkpoint, and is told the records it wrote are not there")
    topic = unique("events")
    with mqlog.open(tmp_path / "src") as src:
        src.create_topic(topic, 2)
        for partition in range(2):
            for first in range(0, 20_000, 5_000):
                src.append(topic, partition, [Record(b"%d" % index * 20, key=b"%d" % index,
                                                     timestamp=1_000 + index)
                                              for index in range(first, first + 5_000)])
    with mqlog.open(broker.url) as cluster:
        for target in (7_000, 23_000):  # records copied when the mirror is killed
            process = start("mirror", tmp_path / "src", broker.url, "--topics", topic)
            deadline = time.monotonic() + 120
            while process.poll() is None and copied(cluster, topic) < target:
                assert time.monotonic() < deadline, "the mirror made no progress"
                time.sleep(0.02)
            process.send_signal(signal.SIGKILL)
            finish(process)
            assert process.returncode == -signal.SIGKILL
            assert copied(cluster, topic) < 40_000
    code, out, err = finish(start("mirror", tmp_path / "src", broker.url, "--topics", topic),
                            timeout=300)
    assert code == 0, err
    assert "verified 2 partitions: record counts and checksums equal" in out
    with mqlog.open(tmp_path / "src") as src, mqlog.open(broker.url) as cluster:
        assert_mirrored(src, cluster, topic)


def copied(cluster: mqlog.Log, topic: str) -> int:
    if topic not in cluster.topics():
        return 0
    partitions = len(cluster.describe_topic(topic).partitions)
    return sum(cluster.end_offset(topic, partition) for partition in range(partitions))


def test_broker_to_broker(runner: CliRunner, tmp_path: Path) -> None:
    """kafka:// on both sides: two mqlog serve processes."""
    topic, group = unique("orders"), unique("billing")
    with serving(tmp_path / "one") as first, serving(tmp_path / "two") as second:
        source, destination = f"kafka://{first.address}", f"kafka://{second.address}"
        with mqlog.open(source) as cluster:
            cluster.create_topic(topic, 2)
            for partition, count in ((0, 30), (1, 8)):
                cluster.append(topic, partition, sample_records(partition, count))
            cluster.alter_offsets(group, {TopicPartition(topic, 0): 12})
        result = run(runner, "mirror", source, destination, "--groups")
        assert result.exit_code == 0, result.output
        assert f"group {group}: {topic}/0 -> 12" in result.output
        assert "verified 2 partitions: record counts and checksums equal" in result.output
        with mqlog.open(source) as one, mqlog.open(destination) as two:
            assert_mirrored(one, two, topic)


def test_follow_to_the_broker_until_sigterm(tmp_path: Path, broker: Broker) -> None:
    skip_on_tansu(broker, TANSU_END_OFFSETS + ": the test waits for the broker's end offsets")
    topic = unique("orders")
    with mqlog.open(tmp_path / "src") as src:
        fill(src, topic, [5, 5])
    process = start("mirror", tmp_path / "src", broker.url, "--topics", topic, "--follow")
    try:
        with mqlog.open(broker.url) as cluster:
            wait_until(lambda: copied(cluster, topic) == 10)
            with mqlog.open(tmp_path / "src") as src:
                src.append(topic, 1, sample_records(1, 7))
            wait_until(lambda: copied(cluster, topic) == 17)
            with mqlog.open(tmp_path / "src") as src:  # a partition added meanwhile
                src.alter_topic(topic, partitions=3)
                src.append(topic, 2, sample_records(2, 4))
            wait_until(lambda: copied(cluster, topic) == 21)
    finally:
        process.send_signal(signal.SIGTERM)
        code, out, err = finish(process, timeout=120)
    assert code == 0, err
    assert "mirrored 21 records of 1 topic" in out
    assert "verified 3 partitions: record counts and checksums equal" in out


def wait_until(condition) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, "the mirror made no progress"
        time.sleep(0.05)
