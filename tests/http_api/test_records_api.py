"""Producing and reading records over HTTP against a real server: payloads as text
and base64, reads by offset and by time, partitioning, long polls woken by
another process, and every refusal with its code and nothing written."""

from __future__ import annotations

import base64
import concurrent.futures
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import mqlog
from mqlog.logstore import Record
from mqlog.producer import key_partition
from tests._directory import snapshot
from tests.damage.test_cases import TOPIC as DAMAGED_TOPIC
from tests.damage.test_cases import _batch as damaged_batch
from tests.damage.test_cases import _flip as flip
from tests.server._serve import RunningServer, serving

BASE_TS = 1_700_000_000_000


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def make_topic(server: RunningServer, name: str, partitions: int = 1, **config: object) -> None:
    with mqlog.open(server.directory) as log:
        log.create_topic(name, partitions, **config)


def produce(http: httpx.Client, topic: str, records: list[dict]) -> list[tuple[int, int]]:
    response = http.post(f"/topics/{topic}/records", json={"records": records})
    assert response.status_code == 200, response.text
    return [(o["partition"], o["offset"]) for o in response.json()["offsets"]]


def test_text_records_read_back_over_http_and_by_the_library(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str) -> None:
    make_topic(shared_http_server, unique_name)
    offsets = produce(shared_http, unique_name, [
        {"value": "héllo", "key": "k1", "headers": {"trace": "abc"}, "timestamp": BASE_TS},
        {"value": "", "timestamp": BASE_TS + 1},
    ])
    assert offsets == [(0, 0), (0, 1)]
    body = shared_http.get(f"/topics/{unique_name}/partitions/0/records",
                           params={"offset": 0}).json()
    assert body["records"] == [
        {"offset": 0, "timestamp": BASE_TS, "key": "k1", "value": "héllo",
         "headers": {"trace": "abc"}, "encoding": "utf-8"},
        {"offset": 1, "timestamp": BASE_TS + 1, "key": None, "value": "", "headers": {},
         "encoding": "utf-8"}]
    assert (body["next_offset"], body["end_offset"]) == (2, 2)
    with mqlog.open(shared_http_server.directory) as log:
        assert log.read(unique_name, 0, 0) == [
            Record("héllo".encode(), b"k1", {"trace": b"abc"}, BASE_TS, 0),
            Record(b"", None, None, BASE_TS + 1, 1)]


def test_binary_keys_values_and_headers_round_trip_in_base64(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str) -> None:
    make_topic(shared_http_server, unique_name)
    payloads = [(bytes(range(256)), b"\xff\xfekey", b"\x00\x80\xc3"),
                (b"plain", b"\xc3\x28", b"v"), (b"\xed\xa0\x80", None, b"")]
    produce(shared_http, unique_name, [
        {"value": b64(value), "key": None if key is None else b64(key),
         "headers": {"bin": b64(header)}, "encoding": "base64"}
        for value, key, header in payloads])
    records = shared_http.get(f"/topics/{unique_name}/partitions/0/records",
                              params={"offset": 0}).json()["records"]
    assert [r["encoding"] for r in records] == ["base64"] * 3
    assert [(base64.b64decode(r["value"]), r["key"] and base64.b64decode(r["key"]),
             base64.b64decode(r["headers"]["bin"])) for r in records] == payloads
    with mqlog.open(shared_http_server.directory) as log:
        assert [(r.value, r.key, r.headers["bin"]) for r in log.read(unique_name, 0, 0)
                ] == payloads


def test_base64_is_sent_for_every_record_when_asked(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str) -> None:
    make_topic(shared_http_server, unique_name)
    produce(shared_http, unique_name, [{"value": "text", "key": "k", "headers": {"h": "v"}}])
    (record,) = shared_http.get(f"/topics/{unique_name}/partitions/0/records",
                                params={"offset": 0, "encoding": "base64"}).json()["records"]
    assert (record["encoding"], record["value"], record["key"], record["headers"]) == (
        "base64", b64(b"text"), b64(b"k"), {"h": b64(b"v")})


def test_read_from_a_time_starts_at_the_first_record_at_or_after_it(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str) -> None:
    make_topic(shared_http_server, unique_name)
    produce(shared_http, unique_name, [{"value": str(i), "timestamp": BASE_TS + 1000 * i}
                                       for i in range(4)])
    url = f"/topics/{unique_name}/partitions/0/records"
    body = shared_http.get(url, params={"time": BASE_TS + 1500}).json()
    assert [r["value"] for r in body["records"]] == ["2", "3"]
    with mqlog.open(shared_http_server.directory) as log:
        assert body["records"][0]["offset"] == log.offset_for_time(unique_name, 0, BASE_TS + 1500)
    after = shared_http.get(url, params={"time": BASE_TS + 10_000}).json()
    assert (after["records"], after["next_offset"]) == ([], 4)


def test_limit_pages_through_a_partition_with_next_offset(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str) -> None:
    make_topic(shared_http_server, unique_name)
    produce(shared_http, unique_name, [{"value": str(i)} for i in range(7)])
    seen, offset = [], 0
    while True:
        body = shared_http.get(f"/topics/{unique_name}/partitions/0/records",
                               params={"offset": offset, "limit": 3}).json()
        if not body["records"]:
            break
        assert len(body["records"]) <= 3
        seen += [r["value"] for r in body["records"]]
        offset = body["next_offset"]
    assert seen == [str(i) for i in range(7)] and offset == 7


def test_records_go_to_their_partition_their_key_s_or_one_per_request(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str) -> None:
    make_topic(shared_http_server, unique_name, partitions=4)
    keyed = produce(shared_http, unique_name, [{"value": "v", "key": f"key-{i}"}
                                               for i in range(8)])
    assert [p for p, _ in keyed] == [key_partition(f"key-{i}".encode(), 4) for i in range(8)]
    assert produce(shared_http, unique_name, [{"value": "v", "partition": 3}])[0][0] == 3
    first = {p for p, _ in produce(shared_http, unique_name, [{"value": "a"}, {"value": "b"}])}
    second = {p for p, _ in produce(shared_http, unique_name, [{"value": "c"}])}
    assert len(first) == 1 and len(second) == 1
    assert second == {(first.pop() + 1) % 4}


def test_a_batch_over_partitions_answers_offsets_in_request_order(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str) -> None:
    make_topic(shared_http_server, unique_name, partitions=2)
    offsets = produce(shared_http, unique_name, [
        {"value": "a", "partition": 1}, {"value": "b", "partition": 0},
        {"value": "c", "partition": 1}])
    assert offsets == [(1, 0), (0, 0), (1, 1)]
    with mqlog.open(shared_http_server.directory) as log:
        assert [r.value for r in log.read(unique_name, 1, 0)] == [b"a", b"c"]


def test_a_durable_topic_answers_once_its_records_are_appended(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str) -> None:
    make_topic(shared_http_server, unique_name, partitions=2, durability="always")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: produce(shared_http, unique_name, [
            {"value": f"{i}-{j}", "partition": j % 2} for j in range(5)]), range(8)))
    assert sorted(o for result in results for o in result) == sorted(
        [(0, i) for i in range(24)] + [(1, i) for i in range(16)])
    with mqlog.open(shared_http_server.directory) as log:
        assert [log.end_offset(unique_name, p) for p in (0, 1)] == [24, 16]


def test_a_long_poll_is_woken_by_an_append_from_another_process(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str) -> None:
    make_topic(shared_http_server, unique_name)
    url = f"/topics/{unique_name}/partitions/0/records"
    wait_s = 20
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        polling = pool.submit(shared_http.get, url, params={"offset": 0, "wait": wait_s},
                              timeout=wait_s + 30)
        time.sleep(1)
        assert not polling.done(), polling.result().text  # it waits for a record
        code = (f"import mqlog\nwith mqlog.open({str(shared_http_server.directory)!r}) as log:"
                f"\n    log.append({unique_name!r}, 0, [b'woken'])")
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
        body = polling.result().json()
        answered_s = time.monotonic() - started
    assert [r["value"] for r in body["records"]] == ["woken"]
    assert answered_s < wait_s  # woken by the append: a poll that ran out answers after wait_s


def test_a_long_poll_with_nothing_to_read_answers_nothing(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str) -> None:
    make_topic(shared_http_server, unique_name)
    produce(shared_http, unique_name, [{"value": "a"}])
    body = shared_http.get(f"/topics/{unique_name}/partitions/0/records",
                           params={"offset": 1, "wait": 0.3}).json()
    assert body == {"records": [], "next_offset": 1, "end_offset": 1}


def _record(**fields: object) -> dict:
    return {"records": [{"value": "v", **fields}]}


@pytest.mark.parametrize(("topic", "body", "status", "code"), [
    ("missing", _record(), 404, "unknown_topic"),
    ("small", _record(partition=2), 404, "unknown_partition"),
    ("small", _record(value="x" * 17), 413, "record_too_large"),
    ("small", _record(value="x" * 8, headers={"h": "x" * 8}), 413, "record_too_large"),
    ("small", {"records": [{"value": "ok"}, {"value": "y" * 17}]}, 413, "record_too_large"),
    ("small", {"records": [{"value": "v"}] * 1001}, 400, "limit_exceeded"),
    ("small", {"records": []}, 400, "invalid_request"),
    ("small", {"record": [{"value": "v"}]}, 400, "invalid_request"),
    ("small", _record(partiton=1), 400, "invalid_request"),
    ("small", _record(value=5), 400, "invalid_request"),
    ("small", _record(partition=-1), 400, "invalid_request"),
    ("small", _record(timestamp=-5), 400, "invalid_request"),
    ("small", _record(encoding="latin-1"), 400, "invalid_request"),
    ("small", _record(value="not base64!", encoding="base64"), 400, "invalid_base64"),
    ("small", _record(key="é", encoding="base64"), 400, "invalid_base64"),
    ("small", _record(headers={"h": "?"}, encoding="base64"), 400, "invalid_base64"),
    ("small", _record(headers={"h": 1}), 400, "invalid_request"),
    ("__internal", _record(), 400, "invalid_topic"),
])
def test_bad_produces_are_refused_and_nothing_is_written(
        shared_http_server: RunningServer, shared_http: httpx.Client, topic: str, body: dict,
        status: int, code: str) -> None:
    with mqlog.open(shared_http_server.directory) as log:
        log.create_topic("small", 2, exist_ok=True, max_record_bytes=16)
        log.engine.create_topic("__internal", internal=True, exist_ok=True)
    before = snapshot(shared_http_server.directory)
    refused = shared_http.post(f"/topics/{topic}/records", json=body)
    assert refused.status_code == status, refused.text
    assert refused.json()["error"]["code"] == code
    assert snapshot(shared_http_server.directory) == before


def test_a_lone_surrogate_is_not_text(shared_http: httpx.Client) -> None:
    refused = shared_http.post("/topics/small/records",
                               content=b'{"records": [{"value": "\\ud800"}]}',
                               headers={"content-type": "application/json"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(("params", "status", "code"), [
    ({}, 400, "invalid_argument"),
    ({"offset": 0, "time": 0}, 400, "invalid_argument"),
    ({"offset": 9}, 416, "offset_out_of_range"),
    ({"offset": -1}, 400, "invalid_request"),
    ({"offset": "first"}, 400, "invalid_request"),
    ({"offset": 0, "limit": 1001}, 400, "limit_exceeded"),
    ({"offset": 0, "limit": 0}, 400, "invalid_request"),
    ({"offset": 0, "wait": 21}, 400, "limit_exceeded"),
    ({"offset": 0, "wait": "nan"}, 400, "invalid_request"),
    ({"offset": 0, "encoding": "hex"}, 400, "invalid_request"),
])
def test_bad_reads_are_refused(shared_http_server: RunningServer, shared_http: httpx.Client,
                               unique_name: str, params: dict, status: int, code: str) -> None:
    make_topic(shared_http_server, unique_name)
    refused = shared_http.get(f"/topics/{unique_name}/partitions/0/records", params=params)
    assert refused.status_code == status, refused.text
    assert refused.json()["error"]["code"] == code


@pytest.mark.parametrize(("path", "code"), [
    ("/topics/missing/partitions/0/records", "unknown_topic"),
    ("/topics/{topic}/partitions/1/records", "unknown_partition"),
])
def test_reads_of_what_does_not_exist_are_404(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str,
        path: str, code: str) -> None:
    make_topic(shared_http_server, unique_name)
    refused = shared_http.get(path.format(topic=unique_name), params={"offset": 0})
    assert refused.status_code == 404 and refused.json()["error"]["code"] == code


def test_a_read_starting_in_damaged_records_is_corrupt_record(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    with mqlog.open(directory) as log:
        log.create_topic(DAMAGED_TOPIC, durability="none")
        for first in (0, 2, 4):
            log.append(DAMAGED_TOPIC, 0, [b"v%d" % first, b"v%d" % (first + 1)])
    file, position, _length = damaged_batch(directory, 2)
    flip(file, position + 60)
    with serving(directory, "--http", "127.0.0.1:0") as server, httpx.Client(
            base_url=server.http_url, timeout=10) as http:
        url = f"/topics/{DAMAGED_TOPIC}/partitions/0/records"
        before = http.get(url, params={"offset": 0}).json()
        assert ([r["value"] for r in before["records"]], before["next_offset"]) == (
            ["v0", "v1"], 2)
        damaged = http.get(url, params={"offset": 2})
        assert damaged.status_code == 500
        assert damaged.json()["error"]["code"] == "corrupt_record"
        assert "4" in damaged.json()["error"]["message"]  # where reading can go on
        after = http.get(url, params={"offset": 4}).json()
        assert [r["value"] for r in after["records"]] == ["v4", "v5"]
