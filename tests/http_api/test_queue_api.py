"""The queue API (SQS shape) against a real ``mqlog serve --http`` process: every
route and its errors, bodies as UTF-8 and base64, priority, delay and ttl,
long polls woken by appends of this server and of other processes, the
receipt-handle race, durable topics, and HTTP, Kafka and embedded clients on
one log at once."""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import mqlog
from tests.server._serve import RunningServer, serving

MESSAGES = "/queues/orders/messages"


@pytest.fixture
def orders(http_server: RunningServer) -> Path:
    """The topic ``orders`` (2 partitions) in the server's log; its directory."""
    with mqlog.open(http_server.directory) as log:
        log.create_topic("orders", partitions=2)
    return http_server.directory


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A client of one server (with ``orders``) for the tests that change nothing."""
    directory = tmp_path_factory.mktemp("shared") / "log"
    with mqlog.open(directory) as log:
        log.create_topic("orders", partitions=2)
    with serving(directory, "--http", "127.0.0.1:0") as server, \
            httpx.Client(base_url=server.http_url, timeout=30) as client:
        yield client


def send(http: httpx.Client, body: dict, topic: str = "orders") -> list[dict]:
    response = http.post(f"/queues/{topic}/messages", json=body)
    assert response.status_code == 201, response.text
    return response.json()["messages"]


def receive(http: httpx.Client, group: str = "workers", topic: str = "orders",
            **params: object) -> list[dict]:
    response = http.get(f"/queues/{topic}/messages", params={"group": group, **params})
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_send_receive_delete(orders: Path, http: httpx.Client) -> None:
    [sent] = send(http, {"message": "hello", "headers": {"h": "v"}, "key": "k"})
    assert set(sent) == {"id", "topic", "partition", "offset"}
    [received] = receive(http, batch_size=10, visibility=30)
    assert {key: received[key] for key in ("id", "body", "encoding", "key", "headers",
                                           "delivery_count", "priority", "partition",
                                           "offset")} == {
        "id": sent["id"], "body": "hello", "encoding": "utf-8", "key": "k",
        "headers": {"h": "v"}, "delivery_count": 1, "priority": 0,
        "partition": sent["partition"], "offset": sent["offset"]}
    assert receive(http) == []  # held by its receipt handle
    handle = received["receipt_handle"]
    assert http.delete(f"{MESSAGES}/{handle}").status_code == 204
    assert http.delete(f"{MESSAGES}/{handle}").status_code == 204  # twice: harmless
    with mqlog.open(orders) as log:
        assert [(row.lag, row.in_flight) for row in log.describe_queue("workers")
                ] == [(0, 0), (0, 0)]


def test_a_batch_is_appended_in_order_and_keys_choose_partitions(orders: Path,
                                                                 http: httpx.Client) -> None:
    sent = send(http, {"messages": [{"message": f"m{n}"} for n in range(5)]})
    assert len({m["partition"] for m in sent}) == 1  # keyless: one partition per request
    assert [m["offset"] for m in sent] == list(range(sent[0]["offset"],
                                                     sent[0]["offset"] + 5))
    keyed = send(http, {"messages": [{"message": "a", "key": "same"},
                                     {"message": "b", "key": "same"}]})
    assert keyed[0]["partition"] == keyed[1]["partition"]
    with mqlog.open(orders) as log:
        values = [r.value for r in log.read("orders", sent[0]["partition"], 0)]
        assert [v for v in values if v.startswith(b"m")] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    bodies = [m["body"] for m in receive(http, batch_size=10)]
    assert sorted(bodies) == ["a", "b", "m0", "m1", "m2", "m3", "m4"]


def test_base64_bodies_round_trip_binary(orders: Path, http: httpx.Client) -> None:
    raw = bytes(range(256))
    send(http, {"message": base64.b64encode(raw).decode(), "encoding": "base64",
                "key": base64.b64encode(b"\xff").decode(),
                "headers": {"h": base64.b64encode(b"\x00").decode()}})
    [received] = receive(http)
    assert received["encoding"] == "base64"  # not UTF-8: base64 going out too
    assert base64.b64decode(received["body"]) == raw
    assert base64.b64decode(received["key"]) == b"\xff"
    assert base64.b64decode(received["headers"]["h"]) == b"\x00"
    bad = http.post(MESSAGES, json={"message": "not base64!", "encoding": "base64"})
    assert error_of(bad) == (400, "invalid_base64")


def test_priority_delay_and_ttl_are_honoured(orders: Path, http: httpx.Client) -> None:
    send(http, {"messages": [{"message": "low"}, {"message": "high", "priority": 9},
                             {"message": "later", "delay": 3600},
                             {"message": "soon", "delay": 0.5},
                             {"message": "gone", "ttl": 0.001, "priority": 1}]})
    first = receive(http, batch_size=1)
    assert [(m["body"], m["priority"], m["topic"]) for m in first] == [
        ("high", 9, "orders.p9")]
    # "gone" expired before anyone received it; "soon" comes due without an append:
    # the long poll wakes for it (wait is far longer than its delay).
    rest = receive(http, batch_size=10)
    assert [m["body"] for m in rest] == ["low"]
    assert [m["body"] for m in receive(http, batch_size=10, wait=20)] == ["soon"]
    with mqlog.open(orders) as log:
        rows = log.describe_queue("workers")
        assert [row.topic for row in rows if row.expired] == ["orders.p1"]
        assert sum(row.expired for row in rows) == 1
        assert sum(row.delayed for row in rows) == 1  # "later"


def test_release_with_a_delay_then_dead_letters_with_the_reason(orders: Path,
                                                                  http: httpx.Client) -> None:
    send(http, {"message": "poison"})
    for attempt in range(5):  # max_deliveries is 5
        [received] = receive(http, wait=20)
        assert received["delivery_count"] == attempt + 1
        release = http.post(f"{MESSAGES}/{received['receipt_handle']}/release",
                            json={"delay": 0, "reason": f"failed {attempt}"})
        assert release.status_code == 204, release.text
        again = http.post(f"{MESSAGES}/{received['receipt_handle']}/release", json={})
        assert error_of(again) == (409, "receipt_stale")
    assert receive(http) == []  # the sixth delivery moved it to the dead letters
    with mqlog.open(orders) as log:
        [letter] = [letter for p in range(2) for letter in log.read("orders.dlq", p, 0)]
        assert (letter.value, letter.headers["dlq.reason"]) == (b"poison", b"failed 4")


def test_release_without_a_body_uses_the_back_off(orders: Path, http: httpx.Client) -> None:
    send(http, {"message": "m"})
    [received] = receive(http)
    response = http.post(f"{MESSAGES}/{received['receipt_handle']}/release")
    assert response.status_code == 204, response.text
    assert [m["delivery_count"] for m in receive(http, wait=20)] == [2]


def test_visibility_change_holds_the_message_and_keeps_the_handle(
        orders: Path, http: httpx.Client) -> None:
    send(http, {"message": "m"})
    [received] = receive(http, visibility=1)
    handle = received["receipt_handle"]
    extended = http.post(f"{MESSAGES}/{handle}/visibility", json={"visibility": 3600})
    assert extended.status_code == 204, extended.text
    assert receive(http, wait=2) == []  # past the first visibility: still held
    assert http.delete(f"{MESSAGES}/{handle}").status_code == 204
    released = http.post(f"{MESSAGES}/{handle}/visibility", json={"visibility": 1})
    assert error_of(released) == (409, "receipt_stale")


def test_receipt_handle_race_the_late_delete_is_refused_and_nothing_is_lost(
        orders: Path, http_server: RunningServer) -> None:
    """Two consumers: the first one's visibility runs out, the second receives
    the message; the first one's late DELETE gets 409 and the message stays
    with the second, which deletes it."""
    with httpx.Client(base_url=http_server.http_url, timeout=30) as first, \
            httpx.Client(base_url=http_server.http_url, timeout=30) as second:
        send(first, {"message": "contended"})
        [mine] = receive(first, visibility=0.5)
        # The long poll wakes when the first lock runs out (no append needed).
        [theirs] = receive(second, visibility=3600, wait=20)
        assert (theirs["id"], theirs["delivery_count"]) == (mine["id"], 2)
        late = first.delete(f"{MESSAGES}/{mine['receipt_handle']}")
        assert error_of(late) == (409, "receipt_stale")
        assert "stale receipt handle" in late.json()["error"]["message"]
        late_release = first.post(f"{MESSAGES}/{mine['receipt_handle']}/release", json={})
        assert error_of(late_release) == (409, "receipt_stale")
        with mqlog.open(orders) as log:
            [pending] = log.pending("workers")  # not lost: still held by the second
            assert (pending.delivery_count, pending.lock_expired) == (2, False)
        assert second.delete(f"{MESSAGES}/{theirs['receipt_handle']}").status_code == 204
        assert receive(first) == [] and receive(second) == []


def test_long_poll_woken_by_an_embedded_append_of_another_process(
        orders: Path, http: httpx.Client) -> None:
    results: list[list[dict]] = []
    poll = threading.Thread(target=lambda: results.append(receive(http, wait=20)))
    poll.start()
    script = ("import sys, mqlog\n"
              "with mqlog.open(sys.argv[1]) as log:\n"
              "    log.append('orders', 1, [b'from another process'])\n")
    subprocess.run([sys.executable, "-c", script, str(orders)], check=True, timeout=60)
    poll.join(timeout=60)
    assert [[m["body"] for m in got] for got in results] == [["from another process"]]


def test_long_poll_woken_by_a_post(orders: Path, http_server: RunningServer,
                                   http: httpx.Client) -> None:
    results: list[list[dict]] = []
    poll = threading.Thread(target=lambda: results.append(receive(http, wait=20)))
    poll.start()
    with httpx.Client(base_url=http_server.http_url, timeout=30) as other:
        # Until the poll is waiting, a message sent may be taken at once: either way
        # the poll returns it well before its wait.
        send(other, {"message": "posted"})
    poll.join(timeout=60)
    assert [[m["body"] for m in got] for got in results] == [["posted"]]


def test_a_long_poll_whose_client_left_takes_nothing(orders: Path, http_server: RunningServer,
                                                     http: httpx.Client) -> None:
    with httpx.Client(base_url=http_server.http_url, timeout=1) as leaving, \
            pytest.raises(httpx.ReadTimeout):
        receive(leaving, wait=20)  # gives up after 1 s and closes its connection
    time.sleep(2)  # for the server to see the connection closed (a loaded machine)
    send(http, {"message": "for someone still here"})
    assert [m["body"] for m in receive(http)] == ["for someone still here"]


def test_a_durable_topic_works_the_same(http_server: RunningServer,
                                        http: httpx.Client) -> None:
    with mqlog.open(http_server.directory) as log:
        log.create_topic("safe", durability="always")
    sent = send(http, {"messages": [{"message": "a"}, {"message": "b", "priority": 3}]},
                topic="safe")
    assert [m["topic"] for m in sent] == ["safe", "safe.p3"]
    got = receive(http, topic="safe", batch_size=10)
    assert [m["body"] for m in got] == ["b", "a"]
    for message in got:
        assert http.delete(f"/queues/safe/messages/{message['receipt_handle']}"
                           ).status_code == 204
    with mqlog.open(http_server.directory) as log:
        assert all(row.lag == 0 for row in log.describe_queue("workers"))


@pytest.mark.parametrize(("method", "path", "body", "expected"), [
    ("POST", "/queues/nope/messages", {"message": "x"}, (404, "unknown_topic")),
    ("POST", "/queues/__consumer_offsets/messages", {"message": "x"}, (400, "invalid_topic")),
    ("GET", "/queues/__consumer_offsets/messages?group=g", None, (400, "invalid_topic")),
    ("POST", MESSAGES, {"message": "x", "priority": 10}, (400, "invalid_request")),
    ("POST", MESSAGES, {"message": "x", "delay": -1}, (400, "invalid_request")),
    ("POST", MESSAGES, {"message": "x", "ttl": 0}, (400, "invalid_request")),
    ("POST", MESSAGES, {"message": "x", "typo": 1}, (400, "invalid_request")),
    ("POST", MESSAGES, {"messages": []}, (400, "invalid_request")),
    ("POST", MESSAGES, {"messages": [{"message": "x"}] * 1001}, (400, "limit_exceeded")),
    ("POST", MESSAGES, {"message": "x" * 1_100_000}, (413, "request_too_large")),
    ("GET", "/queues/nope/messages?group=g", None, (404, "unknown_topic")),
    ("GET", MESSAGES, None, (400, "invalid_request")),  # no group
    ("GET", f"{MESSAGES}?group=bad/name", None, (400, "invalid_argument")),
    ("GET", f"{MESSAGES}?group=g&batch_size=0", None, (400, "invalid_request")),
    ("GET", f"{MESSAGES}?group=g&batch_size=1001", None, (400, "limit_exceeded")),
    ("GET", f"{MESSAGES}?group=g&wait=21", None, (400, "limit_exceeded")),
    ("GET", f"{MESSAGES}?group=g&wait=nan", None, (400, "invalid_request")),
    ("GET", f"{MESSAGES}?group=g&visibility=0", None, (400, "invalid_request")),
    ("GET", f"{MESSAGES}?group=g&visibility=43201", None, (400, "limit_exceeded")),
    ("DELETE", f"{MESSAGES}/garbage", None, (400, "invalid_receipt")),
    ("DELETE", f"{MESSAGES}/g:other:0:0:1:1", None, (400, "invalid_receipt")),
    ("DELETE", f"{MESSAGES}/nogroup:orders:0:0:1:1", None, (404, "unknown_group")),
    ("POST", f"{MESSAGES}/g:orders:0:0:1:1/release", {"delay": -1}, (400, "invalid_request")),
    ("POST", f"{MESSAGES}/g:orders:0:0:1:1/visibility", {}, (400, "invalid_request")),
    ("POST", f"{MESSAGES}/g:orders:0:0:1:1/visibility", {"visibility": 50000},
     (400, "limit_exceeded")),
])
def test_refusals_have_a_status_and_a_stable_code(shared: httpx.Client, method: str,
                                                  path: str, body: object,
                                                  expected: tuple[int, str]) -> None:
    response = shared.request(method, path, json=body)
    assert error_of(response) == expected, response.text


def test_a_message_over_the_topics_record_limit_is_refused_whole(
        http_server: RunningServer, http: httpx.Client) -> None:
    with mqlog.open(http_server.directory) as log:
        log.create_topic("small", partitions=2, max_record_bytes=100)
    batch = {"messages": [{"message": "ok", "key": "a"}, {"message": "x" * 101, "key": "b"}]}
    response = http.post("/queues/small/messages", json=batch)
    assert error_of(response) == (413, "record_too_large")
    with mqlog.open(http_server.directory) as log:
        assert log.describe_topic("small").record_count == 0  # nothing appended


def test_stale_handle_of_a_group_that_moved_on(orders: Path, http: httpx.Client) -> None:
    send(http, {"message": "m"})
    [received] = receive(http)
    assert http.delete(f"{MESSAGES}/{received['receipt_handle']}").status_code == 204
    extend = http.post(f"{MESSAGES}/{received['receipt_handle']}/visibility",
                       json={"visibility": 10})
    assert error_of(extend) == (409, "receipt_stale")


def test_http_kafka_and_embedded_clients_on_one_log_at_once(tmp_path: Path) -> None:
    """Producers of the three kinds feed one queue at once; HTTP receivers get
    every message exactly once between them, and a Kafka consumer group reads
    the topic as a log meanwhile."""
    from confluent_kafka import Consumer, Producer

    per_source = 50
    with serving(tmp_path / "log", "--kafka", "127.0.0.1:0", "--http", "127.0.0.1:0"
                 ) as server:
        with mqlog.open(server.directory) as log:
            log.create_topic("orders", partitions=2)

        def kafka_producer() -> None:
            producer = Producer({"bootstrap.servers": server.address, "linger.ms": 0})
            for n in range(per_source):
                producer.produce("orders", f"kafka {n}".encode())
            assert producer.flush(30) == 0

        def embedded_producer() -> None:
            with mqlog.open(server.directory) as log, log.producer() as producer:
                for n in range(per_source):
                    producer.send("orders", f"embedded {n}")

        def http_producer() -> None:
            with httpx.Client(base_url=server.http_url, timeout=30) as client:
                for n in range(per_source):
                    send(client, {"message": f"http {n}"})

        received: list[str] = []
        lock = threading.Lock()
        expected = 3 * per_source

        def http_receiver() -> None:
            with httpx.Client(base_url=server.http_url, timeout=30) as client:
                idle = 0
                while idle < 3:
                    with lock:
                        if len(received) >= expected:
                            return
                    got = receive(client, batch_size=7, wait=2)
                    idle = 0 if got else idle + 1
                    for message in got:
                        response = client.delete(f"{MESSAGES}/{message['receipt_handle']}")
                        assert response.status_code == 204, response.text
                    with lock:
                        received.extend(m["body"] for m in got)

        threads = [threading.Thread(target=target) for target in (
            kafka_producer, embedded_producer, http_producer, http_receiver, http_receiver)]
        for thread in threads:
            thread.start()
        consumer = Consumer({"bootstrap.servers": server.address, "group.id": "log-readers",
                             "auto.offset.reset": "earliest"})
        consumer.subscribe(["orders"])
        seen: list[bytes] = []
        for _ in range(600):
            if len(seen) >= expected:
                break
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                seen.append(message.value())
        consumer.close()
        for thread in threads:
            thread.join(timeout=120)
        every = sorted(f"{source} {n}" for source in ("kafka", "embedded", "http")
                       for n in range(per_source))
        assert sorted(received) == every  # each exactly once
        assert sorted(value.decode() for value in seen) == every
