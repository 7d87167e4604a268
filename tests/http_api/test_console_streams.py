"""The web console's server side: its page and files, and its event streams
(snapshots equal to the library's figures, the tail), the token, and the
streams' lifetime (sampling only while watched, ending on shutdown)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

import mqlog
from mqlog.server.http import HttpServer, build_app
from mqlog.server.http._console_events import TAIL_FIELD_SHOWN_MAX, tail_record
from tests.http_api import _console_scene as scene
from tests.server._serve import RunningServer, serving

#: Longest wait for something a stream should send (a loaded machine).
WAIT_S = 30.0


def events(response: httpx.Response) -> Iterator[tuple[str, dict]]:
    """The (event, data) pairs of a server-sent event stream, as they come."""
    event, data = "message", []
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: "):
            data.append(line[len("data: "):])
        elif not line and data:
            yield event, json.loads("\n".join(data))
            event, data = "message", []


def first_events(client: httpx.Client, path: str, count: int) -> list[tuple[str, dict]]:
    with client.stream("GET", path) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        found = []
        for item in events(response):
            found.append(item)
            if len(found) == count:
                return found
    raise AssertionError(f"{path} ended after {len(found)} events")


@pytest.fixture
def scene_server(tmp_path: Path) -> Iterator[RunningServer]:
    scene.fill(tmp_path / "log")
    with serving(tmp_path / "log", "--http", "127.0.0.1:0") as server:
        yield server


@pytest.fixture
def scene_http(scene_server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=scene_server.http_url, timeout=WAIT_S) as client:
        yield client


def test_snapshots_carry_the_library_figures(scene_server: RunningServer,
                                             scene_http: httpx.Client) -> None:
    (kind, first), (_, second) = first_events(scene_http, "/console/events", 2)
    assert kind == "snapshot"
    with mqlog.open(scene_server.directory) as log:
        topics = {name: log.describe_topic(name) for name in (scene.TOPIC, scene.DLQ)}
        groups = {name: log.describe_group(name)
                  for name in (scene.CONSUMER_GROUP, scene.QUEUE_GROUP)}
    for snapshot in (first, second):
        shown = {topic["name"]: topic for topic in snapshot["topics"]}
        assert set(shown) == set(topics)  # internal __ topics left out
        for name, description in topics.items():
            assert shown[name]["records"] == description.record_count
            assert shown[name]["size_bytes"] == description.size_bytes
            assert [(p["partition"], p["start_offset"], p["end_offset"], p["records"],
                     p["size_bytes"], p["segments"]) for p in shown[name]["partitions"]] == [
                (p.partition, p.start_offset, p.end_offset, p.record_count, p.size_bytes,
                 p.segment_count) for p in description.partitions]
        assert shown[scene.DLQ]["dead_letters"] and not shown[scene.TOPIC]["dead_letters"]
        by_name = {group["group"]: group for group in snapshot["groups"]}
        for name, description in groups.items():
            group = by_name[name]
            assert (group["kind"], group["state"], group["lag"]) == (
                description.kind, description.state, description.total_lag)
            assert [(p["topic"], p["partition"], p["committed_offset"], p["end_offset"],
                     p["lag"], p["ready"], p["in_flight"], p["delayed"], p["dead_lettered"])
                    for p in group["partitions"]] == [
                (p.topic, p.partition, p.committed_offset, p.end_offset, p.lag, p.ready,
                 p.in_flight, p.delayed, p.dead_lettered) for p in description.partitions]
    # Rates need two samples: none in the first snapshot, measured in the next.
    assert first["topics"][0]["in_per_s"] is None and first["groups"][0]["in_per_s"] is None
    assert second["topics"][0]["in_per_s"] is not None
    assert second["groups"][0]["out_per_s"] is not None


def test_rates_count_records_appended_between_snapshots(scene_server: RunningServer,
                                                         scene_http: httpx.Client) -> None:
    with scene_http.stream("GET", "/console/events") as response:
        stream = events(response)
        next(stream)
        with mqlog.open(scene_server.directory) as log:
            log.append(scene.TOPIC, 0, [b"more"] * 50)
            lag = log.describe_group(scene.CONSUMER_GROUP).total_lag
        seen = []
        for _, snapshot in stream:
            orders = next(t for t in snapshot["topics"] if t["name"] == scene.TOPIC)
            billing = next(g for g in snapshot["groups"] if g["group"] == scene.CONSUMER_GROUP)
            seen.append((orders["in_per_s"], billing["in_per_s"], billing["out_per_s"]))
            if orders["records"] == scene.RECORDS + 50 and billing["lag"] == lag:
                break
    # The append fell between two snapshots (the topic and the group may see it in
    # different ones: each snapshot describes the topics, then the groups).
    assert any(topic_in > 0 for topic_in, _, _ in seen)
    assert any(group_in > 0 for _, group_in, _ in seen)
    assert all(group_out == 0 for _, _, group_out in seen)  # billing reads nothing


def test_tail_sends_the_newest_records_then_new_ones(scene_server: RunningServer,
                                                    scene_http: httpx.Client) -> None:
    with scene_http.stream("GET", f"/console/tail/{scene.TOPIC}") as response:
        stream = events(response)
        kind, batch = next(stream)
        assert kind == "records" and batch["skipped"] == 0
        assert sorted((r["partition"], r["offset"]) for r in batch["records"]) == [
            (n % 2, n // 2) for n in sorted(range(scene.RECORDS), key=lambda n: (n % 2, n))]
        first = next(r for r in batch["records"] if (r["partition"], r["offset"]) == (1, 0))
        assert first == {"partition": 1, "offset": 0, "timestamp": first["timestamp"],
                         "key": "k1", "value": scene.value_of(1).decode(),
                         "headers": {"trace": "t-1"}, "encoding": "utf-8",
                         "truncated": False}
        with mqlog.open(scene_server.directory) as log:
            log.append(scene.TOPIC, 1, [mqlog.Record(b"\xff\x00binary", key=b"new")])
        kind, batch = next(stream)
        assert kind == "records"
        assert [(r["partition"], r["offset"], r["key"], r["value"], r["encoding"])
                for r in batch["records"]] == [(1, 5, "bmV3", "/wBiaW5hcnk=", "base64")]


def test_tail_of_an_unknown_topic_is_refused(scene_http: httpx.Client) -> None:
    response = scene_http.get("/console/tail/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_topic"


def test_tail_cuts_long_fields_without_splitting_a_character() -> None:
    text = "é" * TAIL_FIELD_SHOWN_MAX  # two bytes each: the limit falls inside one
    record = mqlog.Record(text.encode(), key=b"k", headers={"h": b"\xff"}, timestamp=1,
                          offset=7)
    shown = tail_record(3, record)
    assert (shown.partition, shown.offset, shown.truncated) == (3, 7, True)
    assert shown.encoding == "base64"  # a header is not UTF-8: every field is base64
    short = tail_record(0, mqlog.Record(text.encode(), timestamp=1, offset=0))
    assert short.encoding == "utf-8" and short.truncated
    assert short.value == "é" * (TAIL_FIELD_SHOWN_MAX // 2)


def test_page_and_files_served_with_a_strict_policy(scene_http: httpx.Client) -> None:
    page = scene_http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name, media_type in [("console.js", "text/javascript"), ("console.css", "text/css"),
                             ("favicon.svg", "image/svg+xml")]:
        served = scene_http.get(f"/console/static/{name}")
        assert served.status_code == 200 and f"/console/static/{name}" in page.text
        assert served.headers["content-type"].startswith(media_type)
    for name in ["index.html", "nope.js", "..%2F_console.py"]:
        refused = scene_http.get(f"/console/static/{name}")
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    document = scene_http.get("/openapi.json").json()
    assert not [path for path in document["paths"] if path == "/" or "console" in path]


def test_streams_need_the_token_and_the_page_does_not(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    scene.fill(tmp_path / "log")
    with serving(tmp_path / "log", "--http", "127.0.0.1:0",
                 "--http-token-file", str(token_file)) as server, httpx.Client(
            base_url=server.http_url, timeout=WAIT_S) as client:
        assert client.get("/").status_code == 200
        assert client.get("/console/static/console.js").status_code == 200
        for path in ["/console/events", f"/console/tail/{scene.TOPIC}"]:
            refused = client.get(path)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
            refused = client.get(path, params={"token": "s3cret"})  # never from a URL
            assert refused.status_code == 401
        client.headers["Authorization"] = "Bearer s3cret"
        assert first_events(client, "/console/events", 1)[0][0] == "snapshot"
        assert first_events(client, f"/console/tail/{scene.TOPIC}", 1)[0][0] == "records"


# -- in one process: when sampling runs, and shutting down with streams open ------------


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"still not {what} after {WAIT_S} s"
        await asyncio.sleep(0.02)


async def _first_line(lines: AsyncIterator[str], prefix: str) -> None:
    """Read ``lines`` (kept by the caller: an iterator left to the collector closes
    its response) up to one starting with ``prefix``."""
    async for line in lines:
        if line.startswith(prefix):
            return
    raise AssertionError(f"the stream ended before a line starting {prefix!r}")


def test_sampling_runs_only_while_someone_watches(tmp_path: Path) -> None:
    scene.fill(tmp_path / "log")

    async def scenario(log: mqlog.Log) -> None:
        app = build_app(log)
        server = HttpServer(app, port=0)
        await server.start()
        host, port = server.address
        try:
            async with httpx.AsyncClient(base_url=f"http://{host}:{port}",
                                         timeout=WAIT_S) as client:
                assert getattr(app.state, "console_hub", None) is None
                for _ in range(2):  # and again after the last watcher left
                    async with client.stream("GET", "/console/events") as one, \
                            client.stream("GET", "/console/events") as two:
                        lines = [one.aiter_lines(), two.aiter_lines()]
                        for stream in lines:
                            await _first_line(stream, "event: snapshot")
                        assert app.state.console_hub.watchers == 2
                        assert app.state.console_hub.sampling
                    await _until(lambda: not app.state.console_hub.sampling,
                                 "stopped sampling")
                    assert app.state.console_hub.watchers == 0
        finally:
            await server.close()

    with mqlog.open(tmp_path / "log") as log:
        asyncio.run(scenario(log))


def test_open_streams_end_when_the_server_shuts_down(tmp_path: Path) -> None:
    """With a graceful timeout of an hour, close() returns only because the streams
    end on the app's stopping event; the clients see their ends, not an error."""
    scene.fill(tmp_path / "log")

    async def scenario(log: mqlog.Log) -> None:
        server = HttpServer(build_app(log), port=0, shutdown_timeout_s=3600)
        await server.start()
        host, port = server.address
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}",
                                     timeout=WAIT_S) as client, \
                client.stream("GET", "/console/events") as snapshots, \
                client.stream("GET", f"/console/tail/{scene.TOPIC}") as tail:
            lines = [snapshots.aiter_lines(), tail.aiter_lines()]
            await _first_line(lines[0], "event: snapshot")
            await _first_line(lines[1], "event: records")
            await asyncio.wait_for(server.close(), WAIT_S)
            for stream in lines:  # the rest, up to a clean end
                rest = [line async for line in stream]
                assert all(line.startswith(("event: ", "data: ")) or not line
                           for line in rest)

    with mqlog.open(tmp_path / "log") as log:
        asyncio.run(scenario(log))
