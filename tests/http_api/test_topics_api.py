"""The log API's topics over a real server: create and delete as the library sees
them, refusals with their codes and nothing changed on disk."""

from __future__ import annotations

import httpx
import pytest

import mqlog
from tests._directory import snapshot
from tests.server._serve import RunningServer


def test_a_created_topic_is_what_the_library_describes(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str) -> None:
    created = shared_http.post("/topics", json={
        "name": unique_name, "partitions": 3,
        "config": {"durability": "always", "retention_ms": 60_000}})
    assert created.status_code == 201, created.text
    with mqlog.open(shared_http_server.directory) as log:
        description = log.describe_topic(unique_name)
    assert len(description.partitions) == 3
    assert (description.config.durability, description.config.retention_ms) == ("always", 60_000)
    assert created.json() == shared_http.get(f"/topics/{unique_name}").json()
    assert created.json()["config"]["durability"] == "always"
    assert unique_name in shared_http.get("/topics").json()["topics"]


def test_exist_ok_accepts_the_same_topic_and_refuses_a_different_one(
        shared_http: httpx.Client, unique_name: str) -> None:
    body = {"name": unique_name, "partitions": 2, "exist_ok": True}
    assert shared_http.post("/topics", json=body).status_code == 201
    again = shared_http.post("/topics", json=body)
    assert again.status_code == 200 and len(again.json()["partitions"]) == 2
    different = shared_http.post("/topics", json={**body, "partitions": 3})
    assert different.status_code == 409
    assert different.json()["error"]["code"] == "topic_exists"
    taken = shared_http.post("/topics", json={"name": unique_name, "partitions": 2})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "topic_exists"


def test_a_deleted_topic_is_gone_with_its_records(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str) -> None:
    with mqlog.open(shared_http_server.directory) as log:
        log.create_topic(unique_name)
        log.append(unique_name, 0, [b"x"])
    deleted = shared_http.delete(f"/topics/{unique_name}")
    assert deleted.status_code == 204 and deleted.content == b""
    with mqlog.open(shared_http_server.directory) as log:
        assert unique_name not in log.topics()
    again = shared_http.delete(f"/topics/{unique_name}")
    assert again.status_code == 404 and again.json()["error"]["code"] == "unknown_topic"


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"name": "bad name"}, 400, "invalid_topic"),
    ({"name": "__mine"}, 400, "invalid_topic"),
    ({"name": "t", "partitions": 0}, 400, "invalid_argument"),
    ({"name": "t", "config": {"no_such_setting": 1}}, 400, "invalid_argument"),
    ({"name": "t", "config": {"exist_ok": True}}, 400, "invalid_argument"),
    ({"name": "t", "config": {"segment_bytes": 10}}, 400, "invalid_argument"),
    ({"name": "t", "config": {"durability": "sometimes"}}, 400, "invalid_argument"),
    ({"name": "t", "config": {"segment_bytes": "big"}}, 400, "invalid_argument"),
    ({"name": "t", "partitions": "2"}, 400, "invalid_request"),
    ({"name": "t", "partitons": 2}, 400, "invalid_request"),
    ({"partitions": 2}, 400, "invalid_request"),
])
def test_bad_topics_are_refused_and_nothing_is_written(
        shared_http_server: RunningServer, shared_http: httpx.Client, body: dict,
        status: int, code: str) -> None:
    before = snapshot(shared_http_server.directory)
    refused = shared_http.post("/topics", json=body)
    assert refused.status_code == status, refused.text
    assert refused.json()["error"]["code"] == code
    assert snapshot(shared_http_server.directory) == before


def test_internal_topics_are_described_but_never_deleted(
        shared_http_server: RunningServer, shared_http: httpx.Client) -> None:
    with mqlog.open(shared_http_server.directory) as log:
        log.engine.create_topic("__internal", internal=True, exist_ok=True)
    assert shared_http.get("/topics/__internal").status_code == 200
    refused = shared_http.delete("/topics/__internal")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_topic"
    with mqlog.open(shared_http_server.directory) as log:
        assert "__internal" in log.topics()


def test_a_method_a_route_does_not_take_is_405(shared_http: httpx.Client) -> None:
    refused = shared_http.put("/topics")
    assert refused.status_code == 405
    assert refused.json()["error"]["code"] == "method_not_allowed"
