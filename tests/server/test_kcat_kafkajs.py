"""kcat (librdkafka 2.0 as Debian ships it) and kafkajs (Node.js) against a real
server process, with the embedded API reading and writing the same log."""

from __future__ import annotations

import time

import pytest

import mqlog
from mqlog import Record
from mqlog.consumer import TopicPartition

from . import kafkajs, kcat

BASE_TS = 1_700_000_000_000


def test_kcat_lists_produces_consumes_and_joins_a_group(kafka_server):
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("kc", partitions=2)
    listed = kcat.metadata(kafka_server.address)
    assert "kc" in {topic["topic"] for topic in listed["topics"]}
    kcat.produce(kafka_server.address, "kc", [(f"k{i}", f"v{i}") for i in range(20)],
                 partition=1, headers={"origin": "kcat"}, compression="snappy")
    records = kcat.consume(kafka_server.address, "kc", 20, partition=1)
    assert [(r.offset, r.key, r.value) for r in records] == [
        (i, f"k{i}", f"v{i}") for i in range(20)]
    assert records[0].headers == (("origin", "kcat"),)
    with mqlog.open(kafka_server.directory) as log:
        stored = log.read("kc", 1, 0, max_records=100)
        assert [(r.key, r.value, dict(r.headers)) for r in stored] == [
            (b"k%d" % i, b"v%d" % i, {"origin": b"kcat"}) for i in range(20)]
        log.append("kc", 0, [Record(b"embedded", key=b"e", timestamp=BASE_TS)])
    grouped = kcat.consume_group(kafka_server.address, "kcat-group", ["kc"], 21)
    assert sorted(r.value for r in grouped) == sorted(["embedded", *(f"v{i}" for i in range(20))])
    embedded = next(r for r in grouped if r.value == "embedded")
    assert (embedded.key, embedded.timestamp_ms) == ("e", BASE_TS)


def test_kafkajs_admin_produce_group_consume_and_offsets(kafka_server):
    created = kafkajs.run(kafka_server.address, "admin", "create", "js", "2")
    assert created[0]["op"] == "created"
    with mqlog.open(kafka_server.directory) as log:
        assert log.engine.partition_count("js") == 2
    produced = kafkajs.run(kafka_server.address, "produce", "js", "30", "--acks", "-1",
                           "--compression", "gzip")
    assert produced[-1] == {"op": "done", "count": 30}
    consumed = kafkajs.run(kafka_server.address, "consume", "js", "js-group", "30")
    assert consumed[-1] == {"op": "done", "count": 30}
    records = consumed[:-1]
    assert sorted((r["key"], r["value"], r["headers"]["index"]) for r in records) == sorted(
        (f"key-{i}", f"value-{i}", str(i)) for i in range(30))
    offsets = kafkajs.run(kafka_server.address, "admin", "offsets", "js")[0]
    ends = {p["partition"]: int(p["high"]) for p in offsets["partitions"]}
    assert [p["low"] for p in offsets["partitions"]] == [0, 0]
    assert sum(ends.values()) == 30
    with mqlog.open(kafka_server.directory) as log:
        group = log.describe_group("js-group")
        committed = {p.partition: p.committed_offset for p in group.partitions}
        assert committed == ends  # kafkajs' commits are mqlog's committed offsets
        values = sorted(r.value for p in range(2) for r in log.read("js", p, 0))
        assert values == sorted(b"value-%d" % i for i in range(30))


def test_kafkajs_idempotent_producer_is_accepted(kafka_server):
    kafkajs.run(kafka_server.address, "admin", "create", "js-idem", "3")
    produced = kafkajs.run(kafka_server.address, "produce", "js-idem", "10", "--idempotent")
    assert produced[-1] == {"op": "done", "count": 10}
    with mqlog.open(kafka_server.directory) as log:
        assert sum(log.end_offset("js-idem", p) for p in range(3)) == 10


def test_kcat_produces_with_every_acks_setting_and_idempotence(kafka_server):
    for acks in (0, 1, -1):
        kcat.produce(kafka_server.address, f"kc-acks{acks}", [(None, f"v{i}") for i in range(10)],
                     acks=acks)
    kcat.produce(kafka_server.address, "kc-idem", [(None, f"v{i}") for i in range(10)],
                 config={"enable.idempotence": "true"})
    with mqlog.open(kafka_server.directory) as log:
        for topic in ("kc-acks0", "kc-acks1", "kc-acks-1", "kc-idem"):
            deadline = time.monotonic() + 10
            while log.end_offset(topic, 0) < 10 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [r.value for r in log.read(topic, 0, 0)] == [b"v%d" % i for i in range(10)]


def test_kcat_group_commits_and_resumes_from_its_commits(kafka_server):
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("kc-commit", partitions=2)
        with log.producer() as producer:
            for number in range(12):
                producer.send("kc-commit", f"first-{number}", partition=number % 2)
        first = kcat.consume_group(kafka_server.address, "kc-commit", ["kc-commit"], 12)
        assert sorted(r.value for r in first) == sorted(f"first-{n}" for n in range(12))
        # kcat commits what it read (auto commit, and at close): mqlog's offsets
        committed = {p.partition: p.committed_offset
                     for p in log.describe_group("kc-commit").partitions}
        assert committed == {0: 6, 1: 6}
        with log.producer() as producer:
            for number in range(4):
                producer.send("kc-commit", f"second-{number}", partition=number % 2)
        # A new kcat in the group fetches those offsets and reads only the rest.
        second = kcat.consume_group(kafka_server.address, "kc-commit", ["kc-commit"], 4)
        assert sorted((r.partition, r.offset, r.value) for r in second) == [
            (0, 6, "second-0"), (0, 7, "second-2"), (1, 6, "second-1"), (1, 7, "second-3")]


def test_kcat_starts_at_the_offset_asked(kafka_server):
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("kc-seek", partitions=1)
        log.append("kc-seek", 0, [Record(b"v%d" % n, timestamp=BASE_TS + n * 1000)
                                  for n in range(10)])
    for offset, expected in [("7", [7, 8, 9]), ("-2", [8, 9]),
                             (f"s@{BASE_TS + 4500}", [5, 6, 7, 8, 9])]:
        records = kcat.consume(kafka_server.address, "kc-seek", len(expected), partition=0,
                               offset=offset)
        assert [(r.offset, r.value) for r in records] == [(n, f"v{n}") for n in expected], (
            offset)


def test_kafkajs_admin_grows_describes_reads_lag_and_deletes(kafka_server):
    kafkajs.run(kafka_server.address, "admin", "create", "js-admin", "2")
    (listed,) = kafkajs.run(kafka_server.address, "admin", "topics")
    assert "js-admin" in listed["topics"]
    (metadata,) = kafkajs.run(kafka_server.address, "admin", "metadata", "js-admin")
    assert metadata["topics"] == [{"name": "js-admin", "partitions": [
        {"partition": 0, "leader": 0}, {"partition": 1, "leader": 0}]}]
    grown = kafkajs.run(kafka_server.address, "admin", "partitions", "js-admin", "3")
    assert grown == [{"op": "partitions", "topic": "js-admin", "count": 3}]
    (described,) = kafkajs.run(kafka_server.address, "admin", "configs", "js-admin")
    assert described["error_code"] == 0
    assert described["configs"]["cleanup.policy"] == "delete"
    assert described["configs"]["mqlog.durability"] in {"none", "interval", "always"}
    with mqlog.open(kafka_server.directory) as log:
        assert log.engine.partition_count("js-admin") == 3
        with log.producer() as producer:
            for number in range(15):
                producer.send("js-admin", f"v{number}", partition=number % 3)
        log.alter_offsets("js-lag", {TopicPartition("js-admin", n): n for n in range(3)})
        (lag,) = kafkajs.run(kafka_server.address, "admin", "lag", "js-lag", "js-admin")
        assert [(p["partition"], p["committed"], p["end"], p["lag"])
                for p in lag["partitions"]] == [(0, 0, 5, 5), (1, 1, 5, 4), (2, 2, 5, 3)]
        assert log.describe_group("js-lag").total_lag == 12
        deleted = kafkajs.run(kafka_server.address, "admin", "delete", "js-admin")
        assert deleted == [{"op": "deleted", "topic": "js-admin"}]
        assert "js-admin" not in log.topics()


def test_kafkajs_alters_configs_and_deletes_records(kafka_server):
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("js-tuned", partitions=1, retention_bytes=4096000)
        log.append("js-tuned", 0, [b"%d" % n for n in range(8)])
        altered = kafkajs.run(kafka_server.address, "admin", "alter-configs", "js-tuned",
                              "retention.ms=120000", "cleanup.policy=compact")
        assert altered == [{"op": "altered", "topic": "js-tuned"}]
        config = log.describe_topic("js-tuned").config
        assert (config.retention_ms, config.cleanup_policy, config.retention_bytes) == (
            120000, "compact", None)  # AlterConfigs: what it does not name is reset
        deleted = kafkajs.run(kafka_server.address, "admin", "delete-records", "js-tuned",
                              "0", "5")
        assert deleted == [{"op": "records_deleted", "topic": "js-tuned", "partition": 0}]
        assert (log.start_offset("js-tuned", 0), log.end_offset("js-tuned", 0)) == (5, 8)


@pytest.mark.parametrize("acks", ["0", "1", "-1"])
def test_kafkajs_produces_with_every_acks_setting(kafka_server, acks):
    topic = f"js-acks{acks}"
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic(topic, partitions=1)
        produced = kafkajs.run(kafka_server.address, "produce", topic, "20", "--acks", acks)
        assert produced[-1] == {"op": "done", "count": 20}
        deadline = time.monotonic() + 30
        while log.end_offset(topic, 0) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)  # acks=0: no answer says when the records landed
        assert [r.value for r in log.read(topic, 0, 0)] == [b"value-%d" % i for i in range(20)]


def test_kafkajs_seek_moves_the_consumer(kafka_server):
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("js-seek", partitions=1)
        log.append("js-seek", 0, [Record(b"v%d" % n) for n in range(10)])
    consumed = kafkajs.run(kafka_server.address, "consume", "js-seek", "js-seek-group", "3",
                           "--seek", "0:7", "--no-commit")
    assert consumed[-1] == {"op": "done", "count": 3}
    assert [(r["offset"], r["value"]) for r in consumed[:-1]] == [(7, "v7"), (8, "v8"),
                                                                  (9, "v9")]
