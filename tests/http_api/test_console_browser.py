"""The web console end to end: a real ``mqlog serve --http`` over a log the test
fills with the library (``_console_scene``), and the page in headless Chromium.
The page must load without console errors, show the library's numbers, follow
changes made by an embedded process, browse and redrive a dead letter, and
tail a topic; with a token, ask for it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

import mqlog
from tests.http_api import _console_scene as scene
from tests.http_api._browser import PAGE_TIMEOUT_MS, WatchedPage, chromium, open_page
from tests.server._serve import RunningServer, serving, start_server, stop_server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def scene_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server over the scene for the module: each test compares the page with
    the library as it is when the test runs."""
    directory = tmp_path_factory.mktemp("console") / "log"
    scene.fill(directory)
    with serving(directory, "--http", "127.0.0.1:0") as server:
        yield server


@pytest.fixture
def console(browser: Browser, scene_server: RunningServer) -> Iterator[WatchedPage]:
    """The console's page, connected (its first snapshot shown)."""
    with open_page(browser, scene_server.http_url + "/") as watched:
        expect(watched.page.locator("#status")).to_have_attribute("data-state", "live")
        yield watched


def field(row: Locator, name: str) -> Locator:
    return row.locator(f'td[data-field="{name}"]')


def expect_number(row: Locator, name: str, value: int, *, shown: bool = True) -> None:
    """The cell holds ``value`` exactly, and shows it as such (``shown``) or
    formatted (sizes: only the exact value is compared)."""
    cell = field(row, name)
    expect(cell).to_have_attribute("data-value", str(value))
    if shown:
        expect(cell).to_have_text(f"{value:,}")


def topic_row(page: Page, topic: str) -> Locator:
    return page.locator(f'#topics-table tr.topic[data-topic="{topic}"]')


def partition_row(page: Page, topic: str, partition: int) -> Locator:
    return page.locator(
        f'#topics-table tr.partition[data-topic="{topic}"][data-partition="{partition}"]')


def group_partition_row(page: Page, topic: str, partition: int) -> Locator:
    return page.locator(
        f'#group-partitions tr[data-topic="{topic}"][data-partition="{partition}"]')


def test_page_loads_clean_and_shows_the_library_numbers(console: WatchedPage,
                                                        scene_server: RunningServer) -> None:
    page = console.page
    with mqlog.open(scene_server.directory) as log:
        topics = [log.describe_topic(name) for name in (scene.TOPIC, scene.DLQ)]
        billing = log.describe_group(scene.CONSUMER_GROUP)
        workers = log.describe_group(scene.QUEUE_GROUP)
    for topic in topics:
        row = topic_row(page, topic.name)
        expect_number(row, "partitions", len(topic.partitions))
        expect_number(row, "records", topic.record_count)
        expect_number(row, "size_bytes", topic.size_bytes, shown=False)
        expect_number(row, "segments", sum(p.segment_count for p in topic.partitions))
        row.click()
        for p in topic.partitions:
            partition = partition_row(page, topic.name, p.partition)
            expect_number(partition, "start_offset", p.start_offset)
            expect_number(partition, "end_offset", p.end_offset)
            expect_number(partition, "records", p.record_count)
            expect_number(partition, "size_bytes", p.size_bytes, shown=False)
    expect(page.locator('#topics-table tr.topic[data-topic^="__"]')).to_have_count(0)

    row = page.locator(f'#groups-table tr[data-group="{scene.CONSUMER_GROUP}"]')
    expect(field(row, "state")).to_have_text(billing.state)
    expect_number(row, "lag", billing.total_lag)
    row.click()
    expect(page.locator("#group-detail")).to_have_attribute("data-group", scene.CONSUMER_GROUP)
    for p in billing.partitions:
        partition = group_partition_row(page, p.topic, p.partition)
        assert p.committed_offset is not None
        expect_number(partition, "committed_offset", p.committed_offset)
        expect_number(partition, "end_offset", p.end_offset)
        expect_number(partition, "lag", p.lag)
        expect(page.locator(f'#lag-chart polyline[data-series="{p.topic}/{p.partition}"]')
               ).to_have_count(1)

    row = page.locator(f'#queues-table tr[data-group="{scene.QUEUE_GROUP}"]')
    for name in ("ready", "in_flight", "delayed", "dead_lettered"):
        expect_number(row, name, sum(getattr(p, name) for p in workers.partitions))
    expect_number(row, "lag", workers.total_lag)
    assert sum(p.in_flight for p in workers.partitions) == 2  # the scene is what it says
    row.click()
    expect(page.locator("#group-detail")).to_have_attribute("data-group", scene.QUEUE_GROUP)
    for p in workers.partitions:
        partition = group_partition_row(page, p.topic, p.partition)
        for name in ("ready", "in_flight", "delayed", "dead_lettered", "lag"):
            expect_number(partition, name, getattr(p, name))
    assert console.errors == []


def test_numbers_follow_an_embedded_append(console: WatchedPage,
                                           scene_server: RunningServer) -> None:
    page = console.page
    topic_row(page, scene.TOPIC).click()
    page.locator(f'#groups-table tr[data-group="{scene.CONSUMER_GROUP}"]').click()
    with mqlog.open(scene_server.directory) as log:
        before = log.describe_group(scene.CONSUMER_GROUP).total_lag
        expect_number(topic_row(page, scene.TOPIC), "records",
                      log.describe_topic(scene.TOPIC).record_count)
        log.append(scene.TOPIC, 1, [b"late-1", b"late-2", b"late-3"])
        topic = log.describe_topic(scene.TOPIC)
        billing = log.describe_group(scene.CONSUMER_GROUP)
    assert billing.total_lag == before + 3
    expect_number(topic_row(page, scene.TOPIC), "records", topic.record_count)
    expect_number(partition_row(page, scene.TOPIC, 1), "end_offset",
                  topic.partitions[1].end_offset)
    expect_number(page.locator(f'#groups-table tr[data-group="{scene.CONSUMER_GROUP}"]'),
                  "lag", billing.total_lag)
    lag = billing.partitions[1].lag
    expect_number(group_partition_row(page, scene.TOPIC, 1), "lag", lag)
    expect(page.locator("#lag-legend")).to_contain_text(f"{scene.TOPIC}/1: {lag:,}")
    expect(field(topic_row(page, scene.TOPIC), "in_per_s")).not_to_have_text("–")
    assert console.errors == []


def test_dead_letter_browsed_and_redriven_from_the_page(console: WatchedPage,
                                                        scene_server: RunningServer) -> None:
    page = console.page
    expect(page.locator("#dlq-topic")).to_have_value(scene.DLQ)
    row = page.locator('#letters-table tr.letter[data-partition="0"][data-offset="0"]')
    expect(field(row, "state")).to_have_text("pending")
    expect(field(row, "reason")).to_have_text(scene.DEAD_REASON)
    expect(field(row, "origin")).to_have_text(f"{scene.TOPIC}/0@0")
    row.click()
    detail = page.locator("#letter-detail")
    expect(detail).to_be_visible()
    expect(detail.locator('tr[data-header="trace"] td')).to_have_text("t-0")
    expect(detail.locator('tr[data-header="dlq.reason"] td')).to_have_text(scene.DEAD_REASON)
    expect(detail.locator('tr[data-header="dlq.topic"] td')).to_have_text(scene.TOPIC)
    expect(page.locator("#letter-key")).to_have_text("k0")
    expect(page.locator("#letter-body")).to_have_text(scene.value_of(0).decode())
    with mqlog.open(scene_server.directory) as log:
        end_before = log.end_offset(scene.TOPIC, 0)

    page.locator("#redrive").click()
    expect(page.locator("#redrive-result")).to_have_text("redriven: 1")
    expect(detail).to_have_attribute("data-state", "redriven")
    expect(page.locator("#redrive")).to_be_disabled()
    expect(field(row, "state")).to_have_text("redriven")
    with mqlog.open(scene_server.directory) as log:
        [letter] = log.dead_letters(scene.DLQ)
        assert letter.state == "redriven"
        [back] = log.read(scene.TOPIC, 0, end_before)
    assert (back.key, back.value, dict(back.headers or {})) == (
        b"k0", scene.value_of(0), {"trace": b"t-0"})
    assert console.errors == []


def test_live_tail_shows_a_new_record(console: WatchedPage,
                                      scene_server: RunningServer) -> None:
    page = console.page
    page.locator("#tail-topic").select_option(scene.TOPIC)
    records = page.locator("#tail-table tr.record")
    expect(records.first).to_be_visible()
    marker = f"tail-{uuid.uuid4()}"
    with mqlog.open(scene_server.directory) as log:
        offset = log.append(scene.TOPIC, 1, [mqlog.Record(marker.encode(), key=b"watch")])
    newest = records.first
    expect(field(newest, "value")).to_have_text(marker)
    expect(field(newest, "key")).to_have_text("watch")
    expect(newest).to_have_attribute("data-offset", str(offset))
    expect(newest).to_have_attribute("data-partition", "1")
    assert console.errors == []


def test_token_asked_for_once_and_kept_for_the_tab(browser: Browser, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    scene.fill(tmp_path / "log")
    with serving(tmp_path / "log", "--http", "127.0.0.1:0", "--http-token-file",
                 str(token_file)) as server, open_page(browser, server.http_url + "/") as watched:
        page = watched.page
        dialog = page.locator("#token-dialog")
        expect(dialog).to_have_attribute("open", "")
        page.locator("#token-input").fill("wrong")
        page.locator("#token-dialog button[type=submit]").click()
        expect(dialog).to_have_attribute("open", "")  # refused again: asked again
        page.locator("#token-input").fill("s3cret")
        page.locator("#token-dialog button[type=submit]").click()
        expect(page.locator("#status")).to_have_attribute("data-state", "live",
                                                          timeout=PAGE_TIMEOUT_MS)
        expect(dialog).not_to_have_attribute("open", "")
        expect_number(topic_row(page, scene.TOPIC), "records", scene.RECORDS)
        # Only the refused requests were logged (the browser logs every 401).
        assert watched.errors and all("401" in error for error in watched.errors)
        watched.errors.clear()
        page.reload()
        expect(page.locator("#status")).to_have_attribute("data-state", "live")
        expect(dialog).not_to_have_attribute("open", "")
        assert watched.errors == []


def test_server_stops_cleanly_under_an_open_console(browser: Browser, tmp_path: Path) -> None:
    """SIGTERM with a page streaming snapshots and a tail: the server exits 0 (its
    streams end on shutdown, tests/http_api/test_console_streams.py checks how
    soon), and the page says it is disconnected."""
    scene.fill(tmp_path / "log")
    server = start_server(tmp_path / "log", "--http", "127.0.0.1:0")
    try:
        with open_page(browser, server.http_url + "/") as watched:
            page = watched.page
            page.locator("#tail-topic").select_option(scene.TOPIC)
            expect(page.locator("#tail-table tr.record").first).to_be_visible()
            expect(page.locator("#status")).to_have_attribute("data-state", "live")
            code, stderr = stop_server(server)
            assert (code, stderr) == (0, "")
            expect(page.locator("#status")).to_have_attribute("data-state", "disconnected")
    finally:
        if server.process.poll() is None:
            stop_server(server)
