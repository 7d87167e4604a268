"""The client drivers of the server tests (kafkajs: node/kafkajs_client.js with
kafkajs.py; kcat: kcat.py), checked against Tansu, a Kafka-compatible broker,
so that a later failure against mqlog serve is the server's, not the driver's.

Tansu 0.6.0's bugs shape these tests: kcat cannot speak to it at all (its
ApiVersions v3 answer carries wrong tagged fields; librdkafka reads past the
end), marked xfail; a kafkajs group member waits for the rebalance timeout
before its first assignment, so the consumer here runs with a short one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import _tools, kafkajs, kcat
from ._tansu import running_tansu
from ._tools import ALLOW_MISSING, require_program

#: Short group timeouts: Tansu hands out the first assignment only after the
#: rebalance timeout.
QUICK_GROUP = ["--rebalance-timeout-ms", "2000", "--session-timeout-ms", "6000",
               "--heartbeat-ms", "500"]


@pytest.fixture(scope="module")
def tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_tansu(tmp_path_factory.mktemp("tansu")) as address:
        yield address


def test_kafkajs_round_trip_keeps_keys_values_headers_and_commits(tansu: str) -> None:
    created = kafkajs.run(tansu, "admin", "create", "drivers", "2")
    assert created == [{"op": "created", "topic": "drivers", "partitions": 2, "created": True}]
    metadata = kafkajs.run(tansu, "admin", "metadata", "drivers")[0]
    assert [p["partition"] for p in metadata["topics"][0]["partitions"]] == [0, 1]

    before_ms = int(time.time() * 1000)
    produced = kafkajs.run(tansu, "produce", "drivers", "6")
    assert produced[-1] == {"op": "done", "count": 6}
    assert {line["partition"] for line in produced[:-1]} <= {0, 1}
    assert all(line["base_offset"] == 0 for line in produced[:-1])

    consumed = kafkajs.run(tansu, "consume", "drivers", "group-a", "6", *QUICK_GROUP)
    assert consumed[-1] == {"op": "done", "count": 6}
    records = consumed[:-1]
    assert sorted((r["key"], r["value"], r["headers"]["index"]) for r in records) == [
        (f"key-{i}", f"value-{i}", str(i)) for i in range(6)]
    assert all(before_ms - 60_000 <= r["timestamp"] <= before_ms + 60_000 for r in records)
    counts: dict[int, int] = {}
    for record in records:  # dense offsets from 0 within each partition, in order
        assert record["offset"] == counts.get(record["partition"], 0)
        counts[record["partition"]] = record["offset"] + 1

    committed = kafkajs.run(tansu, "admin", "group-offsets", "group-a", "drivers")[0]
    assert {p["partition"]: p["offset"] for p in committed["partitions"]
            if p["offset"] >= 0} == counts


def test_kafkajs_failure_is_a_json_error_line() -> None:
    with pytest.raises(kafkajs.KafkajsError) as failure:
        kafkajs.run("127.0.0.1:1", "admin", "topics", timeout_s=30)
    assert failure.value.lines[-1]["op"] == "error"
    assert "ECONNREFUSED" in failure.value.lines[-1]["message"]


@pytest.mark.xfail(raises=kcat.KcatError, strict=True,
                   reason="Tansu 0.6.0 answers ApiVersions v3 with wrong tagged fields: "
                          "kcat (librdkafka) fails with 'Read underflow'")
def test_kcat_round_trip(tansu: str) -> None:
    kcat.metadata(tansu, timeout_s=3)
    kcat.produce(tansu, "drivers-kcat", [("k0", "v0"), (None, "v1")], headers={"h": "x"})
    records = kcat.consume(tansu, "drivers-kcat", 2)
    assert [(r.key, r.value, r.headers) for r in records] == [
        ("k0", "v0", (("h", "x"),)), (None, "v1", (("h", "x"),))]


def test_kcat_json_envelopes_are_parsed() -> None:
    lines = [
        {"topic": "t", "partition": 1, "offset": 7, "tstype": "create", "ts": 1700000000000,
         "broker": 0, "headers": ["a", "1", "a", "2"], "key": "k", "payload": "v"},
        {"topic": "t", "partition": 0, "offset": 0, "tstype": "create", "ts": 5,
         "broker": 0, "key": None, "payload": None},
    ]
    records = kcat.parse_records("\n".join(json.dumps(line) for line in lines) + "\n")
    assert records == [
        kcat.KcatRecord("t", 1, 7, 1700000000000, "k", "v", (("a", "1"), ("a", "2"))),
        kcat.KcatRecord("t", 0, 0, 5, None, None, ()),
    ]


def test_kcat_refuses_records_it_cannot_put_on_one_line() -> None:
    with pytest.raises(ValueError, match="one line"):
        kcat.produce("127.0.0.1:1", "t", [("k", "two\nlines")])


def test_a_missing_tool_fails_the_test_unless_allowed(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(ALLOW_MISSING, raising=False)
    with pytest.raises(pytest.fail.Exception, match="kcat.*install_tools.sh"):
        require_program("kcat")
    monkeypatch.setenv(ALLOW_MISSING, "1")
    with pytest.raises(pytest.skip.Exception, match="kcat"):
        require_program("kcat")


def test_kafkajs_without_its_package_fails_the_test(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.setattr(_tools, "NODE_DIR", tmp_path)  # no node_modules there
    monkeypatch.delenv(ALLOW_MISSING, raising=False)
    with pytest.raises(pytest.fail.Exception, match="kafkajs"):
        kafkajs.run("127.0.0.1:1", "admin", "topics")
