"""Groups over HTTP against a real server: consumer groups' lag and queue groups'
depth are the library's (``Log.describe_group``, ``Log.describe_queue``)."""

from __future__ import annotations

import dataclasses
import time

import httpx

import mqlog
from tests.server._serve import RunningServer


def test_a_consumer_group_s_lag_is_describe_group_s(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str) -> None:
    topic = group = unique_name
    with mqlog.open(shared_http_server.directory) as log:
        log.create_topic(topic, partitions=2)
        log.append(topic, 0, [b"a", b"b", b"c"])
        log.append(topic, 1, [b"d"])
        consumer = log.consumer(group, topic, auto_offset_reset="earliest")
        deadline = time.monotonic() + 30
        while not consumer.poll(1):
            assert time.monotonic() < deadline, "the consumer got no records"
        consumer.commit()
        log.append(topic, 0, [b"e", b"f"])
        body = shared_http.get(f"/groups/{group}").json()
        listed = {g["group"]: g for g in shared_http.get("/groups").json()["groups"]}[group]
        description = log.describe_group(group)
        consumer.close()
    assert body["lag"] == description.total_lag == listed["lag"] >= 2
    assert [(p["topic"], p["partition"], p["committed_offset"], p["end_offset"], p["lag"],
             p["member_id"]) for p in body["partitions"]] == [
        (p.topic, p.partition, p.committed_offset, p.end_offset, p.lag, p.member_id)
        for p in description.partitions]
    assert (body["kind"], body["state"], body["generation"], body["queue"]) == (
        "consumer", description.state, description.generation, None)
    assert [m["member_id"] for m in body["members"]] == [
        m.member_id for m in description.members]
    assert (listed["kind"], listed["members"]) == ("consumer", 1)


def test_a_queue_group_s_counts_are_describe_queue_s(
        shared_http_server: RunningServer, shared_http: httpx.Client, unique_name: str) -> None:
    topic = group = unique_name
    with mqlog.open(shared_http_server.directory) as log:
        log.create_topic(topic, partitions=2)
        log.append(topic, 0, [b"%d" % i for i in range(6)])
        log.append(topic, 1, [b"x"])
        worker = log.queue(group, topic)
        taken = worker.receive(max_messages=4)
        taken[0].ack()
        taken[1].nack(delay_s=600)
        body = shared_http.get(f"/groups/{group}").json()
        listed = {g["group"]: g for g in shared_http.get("/groups").json()["groups"]}[group]
        rows = log.describe_queue(group)
        description = log.describe_group(group)
        worker.close()
    assert body["queue"] == [dataclasses.asdict(row) for row in rows]
    assert (sum(row.in_flight for row in rows), sum(row.delayed for row in rows)) == (2, 1)
    assert body["lag"] == listed["lag"] == description.total_lag == sum(row.lag for row in rows)
    assert (body["kind"], listed["kind"], listed["members"], len(body["members"])) == (
        "queue", "queue", 1, 1)


def test_unknown_and_invalid_groups_are_refused(shared_http: httpx.Client) -> None:
    unknown = shared_http.get("/groups/no-such-group")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_group"
    invalid = shared_http.get("/groups/bad name!")
    assert invalid.status_code == 400 and invalid.json()["error"]["code"] == "invalid_argument"
