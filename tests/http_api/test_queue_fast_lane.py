"""The queue API's fast lane (``QueueFastLane``) against a real ``mqlog serve
--http``: plain sends, receives and deletes answer as the routes do (the same
fields, the same errors and codes), other forms still reach the routes, the
token is still required, requests are counted under their route, and deletes
after a topic is made again reach its new share-state files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import mqlog
from tests.server._serve import serving

MESSAGES = "/queues/orders/messages"


@pytest.fixture(scope="module")
def server_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    """A client of one server whose log has ``orders`` (2 partitions); the log's directory."""
    directory = tmp_path_factory.mktemp("fast") / "log"
    with mqlog.open(directory) as log:
        log.create_topic("orders", partitions=2)
    with serving(directory, "--http", "127.0.0.1:0") as server, \
            httpx.Client(base_url=server.http_url, timeout=30) as client:
        yield client, directory


@pytest.fixture
def http(server_dir: tuple[httpx.Client, Path]) -> httpx.Client:
    return server_dir[0]


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_plain_and_full_forms_answer_alike(http: httpx.Client) -> None:
    plain = http.post(MESSAGES, json={"message": "a"})  # the fast lane
    full = http.post(MESSAGES, json={"message": "b", "encoding": "utf-8", "priority": 0})
    batch = http.post(MESSAGES, json={"messages": [{"message": "c"}, {"message": "d"}]})
    assert [r.status_code for r in (plain, full, batch)] == [201, 201, 201]
    assert [r.headers["content-type"] for r in (plain, full, batch)] == ["application/json"] * 3
    sent = [m for r in (plain, full, batch) for m in r.json()["messages"]]
    assert [sorted(m) for m in sent] == [["id", "offset", "partition", "topic"]] * 4
    quick = http.get(MESSAGES, params={"group": "alike", "batch_size": 2, "visibility": 60})
    waited = http.get(MESSAGES, params={"group": "alike", "batch_size": 2, "wait": 0.01})
    assert quick.status_code == waited.status_code == 200
    received = quick.json()["messages"] + waited.json()["messages"]
    assert sorted(m["body"] for m in received) == ["a", "b", "c", "d"]
    assert {tuple(sorted(m)) for m in received} == {tuple(sorted(
        ["id", "body", "encoding", "key", "headers", "receipt_handle", "delivery_count",
         "priority", "topic", "partition", "offset", "timestamp"]))}
    for message in received:
        deleted = http.delete(f"{MESSAGES}/{message['receipt_handle']}")
        assert (deleted.status_code, deleted.content) == (204, b"")
        assert "content-type" not in deleted.headers
    stale = http.delete(f"{MESSAGES}/{received[0]['receipt_handle']}")
    assert stale.status_code == 204  # acked twice: still fine
    assert http.get(MESSAGES, params={"group": "alike"}).json() == {"messages": []}


@pytest.mark.parametrize(("method", "path", "options", "expected"), [
    ("POST", "/queues/nope/messages", {"json": {"message": "a"}}, (404, "unknown_topic")),
    ("POST", "/queues/__internal/messages", {"json": {"message": "a"}}, (400, "invalid_topic")),
    ("POST", MESSAGES, {"json": {"messages": [{"message": "a"}] * 1001}},
     (400, "limit_exceeded")),
    ("POST", MESSAGES, {"json": {"messages": []}}, (400, "invalid_request")),
    ("POST", MESSAGES, {"json": {"message": 5}}, (400, "invalid_request")),
    ("POST", MESSAGES, {"content": b"{not json", "headers": {"content-type": "application/json"}},
     (400, "invalid_request")),
    ("GET", MESSAGES, {"params": {"group": "g", "batch_size": 1001}}, (400, "limit_exceeded")),
    ("GET", MESSAGES, {"params": {"group": "g", "batch_size": 0}}, (400, "invalid_request")),
    ("GET", MESSAGES, {"params": {"group": "g", "visibility": 0}}, (400, "invalid_request")),
    ("GET", MESSAGES, {"params": {"batch_size": 1}}, (400, "invalid_request")),
    ("GET", "/queues/nope/messages", {"params": {"group": "g"}}, (404, "unknown_topic")),
    ("DELETE", f"{MESSAGES}/junk", {}, (400, "invalid_receipt")),
    ("DELETE", f"{MESSAGES}/nobody:orders:0:0:1:1", {}, (404, "unknown_group")),
])
def test_refusals_are_the_routes(http: httpx.Client, method: str, path: str, options: dict,
                                 expected: tuple[int, str]) -> None:
    assert error_of(http.request(method, path, **options)) == expected


def test_a_stale_delete_is_409(http: httpx.Client) -> None:
    http.post(MESSAGES, json={"message": "stale"})
    [message] = http.get(MESSAGES, params={"group": "stale", "visibility": 60}).json()["messages"]
    handle = message["receipt_handle"]
    released = http.post(f"{MESSAGES}/{handle}/release", json={"delay": 0})
    assert released.status_code == 204
    assert error_of(http.delete(f"{MESSAGES}/{handle}")) == (409, "receipt_stale")


def test_fast_lane_requests_are_counted_under_their_route(http: httpx.Client) -> None:
    def count(method: str, route: str, status: str) -> float:
        page = http.get("/metrics").text
        return sum(sample.value for family in text_string_to_metric_families(page)
                   for sample in family.samples
                   if sample.name == "mqlog_http_requests_total"
                   and sample.labels == {"method": method, "route": route, "status": status})

    before = (count("POST", "/queues/{topic}/messages", "201"),
              count("GET", "/queues/{topic}/messages", "200"),
              count("DELETE", "/queues/{topic}/messages/{receipt_handle}", "204"),
              count("POST", "/queues/{topic}/messages", "404"))
    http.post(MESSAGES, json={"message": "counted"})
    [message] = http.get(MESSAGES, params={"group": "counted"}).json()["messages"]
    http.delete(f"{MESSAGES}/{message['receipt_handle']}")
    http.post("/queues/nope/messages", json={"message": "x"})
    after = (count("POST", "/queues/{topic}/messages", "201"),
             count("GET", "/queues/{topic}/messages", "200"),
             count("DELETE", "/queues/{topic}/messages/{receipt_handle}", "204"),
             count("POST", "/queues/{topic}/messages", "404"))
    assert [a - b for a, b in zip(after, before)] == [1, 1, 1, 1]


def test_deletes_reach_a_topic_made_again(server_dir: tuple[httpx.Client, Path]) -> None:
    http, directory = server_dir
    topic = "/queues/again/messages"
    for _round in range(2):
        assert http.post("/topics", json={"name": "again"}).status_code == 201
        http.post(topic, json={"messages": [{"message": "x"}, {"message": "y"}]})
        [first] = http.get(topic, params={"group": "g"}).json()["messages"]
        assert http.delete(f"{topic}/{first['receipt_handle']}").status_code == 204
        with mqlog.open(directory) as log:  # another process sees the ack in the files
            assert [p.offset for p in log.pending("g")] == []
        assert http.delete("/topics/again").status_code == 204


def test_the_token_is_still_required(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    with mqlog.open(tmp_path / "log") as log:
        log.create_topic("orders")
    with serving(tmp_path / "log", "--http", "127.0.0.1:0",
                 "--http-token-file", str(token_file)) as server, \
            httpx.Client(base_url=server.http_url, timeout=30) as http:
        good = {"Authorization": "Bearer s3cret"}
        bad = {"Authorization": "Bearer s3cre"}
        for headers in ({}, bad):
            assert error_of(http.post(MESSAGES, json={"message": "a"}, headers=headers)) == (
                401, "unauthorized")
            assert error_of(http.get(MESSAGES, params={"group": "g"}, headers=headers)) == (
                401, "unauthorized")
            assert error_of(http.delete(f"{MESSAGES}/g:orders:0:0:1:1", headers=headers)) == (
                401, "unauthorized")
        assert http.post(MESSAGES, json={"message": "a"}, headers=good).status_code == 201
        [message] = http.get(MESSAGES, params={"group": "g"}, headers=good).json()["messages"]
        assert http.delete(f"{MESSAGES}/{message['receipt_handle']}",
                           headers=good).status_code == 204
