"""kcat (librdkafka 2.0 as Debian ships it) and kafkajs (Node.js) against a real
server process, with the embedded API reading and writing the same log."""

from __future__ import annotations

import mqlog
from mqlog import Record

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
