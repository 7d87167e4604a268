"""Dead letters over HTTP against a real server: listed and shown as the library
sees them, redriven back to their origin (checked with the library), refusals
with their codes and nothing written."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

import mqlog
from tests._directory import snapshot
from tests.server._serve import RunningServer


def dead_letter(directory: Path, topic: str, values: list[bytes], partitions: int = 1) -> str:
    """Make ``topic`` with ``values`` in partition 0 (and one record "p1" in partition 1
    when ``partitions`` is 2), and dead-letter them all (reason "boom"); returns the
    dead-letter topic."""
    with mqlog.open(directory) as log:
        log.create_topic(topic, partitions=partitions)
        log.append(topic, 0, values)
        if partitions > 1:
            log.append(topic, 1, [b"p1"])
        worker = log.queue(f"{topic}-workers", topic, max_deliveries=1)
        for message in worker.receive(max_messages=100):
            message.nack(delay_s=0, reason="boom")
        assert worker.receive(max_messages=100) == []
        worker.close()
    return f"{topic}.dlq"


def test_letters_are_listed_as_the_library_sees_them(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str) -> None:
    dlq = dead_letter(shared_http_server.directory, unique_name, [b"a", b"\xff"], partitions=2)
    body = shared_http.get(f"/dead-letters/{dlq}").json()
    with mqlog.open(shared_http_server.directory) as log:
        letters = log.dead_letters(dlq)
    assert body["more"] is False
    assert [(x["partition"], x["offset"], x["state"], x["reason"], x["origin"],
             x["delivery_count"], x["first_delivery_ms"], x["last_delivery_ms"],
             x["timestamp"]) for x in body["dead_letters"]] == [
        (x.partition, x.offset, x.state, x.reason,
         {"topic": x.origin_topic, "partition": x.origin_partition, "offset": x.origin_offset},
         x.delivery_count, x.first_delivery_ms, x.last_delivery_ms, x.record.timestamp)
        for x in letters]
    text, binary = [x for x in body["dead_letters"] if x["origin"]["partition"] == 0]
    assert (text["value"], text["encoding"], text["headers"]["dlq.reason"]) == (
        "a", "utf-8", "boom")
    assert (base64.b64decode(binary["value"]), binary["encoding"]) == (b"\xff", "base64")
    assert base64.b64decode(binary["headers"]["dlq.topic"]) == unique_name.encode()


def test_filters_and_limit_choose_the_letters(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str) -> None:
    dlq = dead_letter(shared_http_server.directory, unique_name, [b"a", b"b", b"c"])
    with mqlog.open(shared_http_server.directory) as log:
        log.redrive(dlq, [1])
        log.purge_dead_letters(dlq, [2])
    url = f"/dead-letters/{dlq}"
    for state, values in [("pending", ["a"]), ("redriven", ["b"]), ("purged", ["c"])]:
        letters = shared_http.get(url, params={"state": state}).json()["dead_letters"]
        assert [(x["value"], x["state"]) for x in letters] == [(v, state) for v in values]
    first = shared_http.get(url, params={"limit": 2}).json()
    assert ([x["offset"] for x in first["dead_letters"]], first["more"]) == ([0, 1], True)
    assert shared_http.get(url, params={"partition": 0}).json()["more"] is False


def test_one_letter_is_shown_with_the_listed_fields(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str) -> None:
    dlq = dead_letter(shared_http_server.directory, unique_name, [b"a", b"b"])
    listed = shared_http.get(f"/dead-letters/{dlq}").json()["dead_letters"]
    shown = shared_http.get(f"/dead-letters/{dlq}/0/1")
    assert shown.status_code == 200 and shown.json() == listed[1]
    encoded = shared_http.get(f"/dead-letters/{dlq}/0/1", params={"encoding": "base64"}).json()
    assert (encoded["encoding"], base64.b64decode(encoded["value"])) == ("base64", b"b")


def test_redrive_moves_a_letter_back_to_where_it_came_from(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str) -> None:
    dlq = dead_letter(shared_http_server.directory, unique_name, [b"a", b"b", b"c"])
    url = f"/dead-letters/{dlq}/redrive"
    before = snapshot(shared_http_server.directory)
    assert shared_http.post(url, json={"offsets": [1], "dry_run": True}).json() == {
        "redriven": 1}
    assert snapshot(shared_http_server.directory) == before
    assert shared_http.post(url, json={"offsets": [1], "partition": 0}).json() == {
        "redriven": 1}
    with mqlog.open(shared_http_server.directory) as log:
        (moved,) = log.read(unique_name, 0, 3)
        assert moved.value == b"b" and not any(k.startswith("dlq.") for k in moved.headers)
        assert [x.state for x in log.dead_letters(dlq)] == ["pending", "redriven", "pending"]
    assert shared_http.post(url, json={"offsets": [1]}).json() == {"redriven": 0}
    assert shared_http.post(url, json={}).json() == {"redriven": 2}
    with mqlog.open(shared_http_server.directory) as log:
        assert [r.value for r in log.read(unique_name, 0, 3)] == [b"b", b"a", b"c"]


def test_redrive_to_another_topic(shared_http_server: RunningServer, shared_http: httpx.Client,
                                  unique_name: str) -> None:
    dlq = dead_letter(shared_http_server.directory, unique_name, [b"a"])
    with mqlog.open(shared_http_server.directory) as log:
        log.create_topic(f"{unique_name}-retry")
    moved = shared_http.post(f"/dead-letters/{dlq}/redrive", json={"to": f"{unique_name}-retry"})
    assert moved.json() == {"redriven": 1}
    with mqlog.open(shared_http_server.directory) as log:
        assert [r.value for r in log.read(f"{unique_name}-retry", 0, 0)] == [b"a"]


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"to": "missing"}, 404, "unknown_topic"),
    ({"to": "__internal"}, 400, "invalid_topic"),
    ({"partition": 5}, 404, "unknown_partition"),
    ({"offsets": list(range(1001))}, 400, "limit_exceeded"),
    ({"offsets": [-1]}, 400, "invalid_request"),
    ({"offsets": "all"}, 400, "invalid_request"),
    ({"offset": [0]}, 400, "invalid_request"),
])
def test_bad_redrives_are_refused_and_nothing_is_written(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str,
        body: dict, status: int, code: str) -> None:
    dlq = dead_letter(shared_http_server.directory, unique_name, [b"a"])
    before = snapshot(shared_http_server.directory)
    refused = shared_http.post(f"/dead-letters/{dlq}/redrive", json=body)
    assert refused.status_code == status, refused.text
    assert refused.json()["error"]["code"] == code
    assert snapshot(shared_http_server.directory) == before


@pytest.mark.parametrize(("path", "params", "status", "code"), [
    ("/dead-letters/missing", {}, 404, "unknown_topic"),
    ("/dead-letters/{topic}", {}, 400, "invalid_argument"),
    ("/dead-letters/{topic}/redrive", None, 400, "invalid_argument"),
    ("/dead-letters/{dlq}", {"state": "lost"}, 400, "invalid_request"),
    ("/dead-letters/{dlq}", {"limit": 1001}, 400, "limit_exceeded"),
    ("/dead-letters/{dlq}", {"partition": 3}, 404, "unknown_partition"),
    ("/dead-letters/{dlq}/0/7", {}, 416, "offset_out_of_range"),
    ("/dead-letters/{topic}/0/0", {}, 400, "invalid_argument"),
    ("/dead-letters/{dlq}/0/x", {}, 400, "invalid_request"),
])
def test_bad_dead_letter_requests_are_refused(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str,
        path: str, params: dict | None, status: int, code: str) -> None:
    dlq = dead_letter(shared_http_server.directory, unique_name, [b"a"])
    url = path.format(topic=unique_name, dlq=dlq)
    refused = (shared_http.post(url, json={}) if params is None
               else shared_http.get(url, params=params))
    assert refused.status_code == status, refused.text
    assert refused.json()["error"]["code"] == code
