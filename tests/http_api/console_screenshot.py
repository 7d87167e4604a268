"""Photograph the web console for docs/console.md (docs/img/console.png).

Usage: ``python -m tests.http_api.console_screenshot [PATH]`` (from the
repository root; default PATH: docs/img/console.png). Serves the scene of the
browser tests (``_console_scene``) with ``mqlog serve --http`` in a temporary
directory while a thread appends records and moves the ``billing`` group's
offsets, so that the rates and the lag chart move; then opens each view, waits
for the chart to fill and saves a full-page screenshot. Fails if the page
logged an error.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

import mqlog
from mqlog import TopicPartition
from tests.http_api import _console_scene as scene
from tests.http_api._browser import chromium, open_page
from tests.server._serve import REPO_ROOT, serving

DEFAULT_PATH = REPO_ROOT / "docs" / "img" / "console.png"
#: How long the chart fills before the picture (one point per snapshot, ~1 s).
FILL_S = 40
#: Records appended per step, and the time between steps.
APPEND_BATCH = 6
STEP_S = 0.25


def traffic(directory: Path, stop: threading.Event) -> None:
    """Append to ``orders`` (3 records per step and partition) and move ``billing``
    on slower (1), then faster (4): its lag grows, then drains."""
    with mqlog.open(directory) as log:
        step = 0
        while not stop.wait(STEP_S):
            step += 1
            log.append(scene.TOPIC, step % 2, [b'{"order": "live", "step": %d}' % step]
                       * APPEND_BATCH)
            billing = log.describe_group(scene.CONSUMER_GROUP)
            catching_up = step * STEP_S > FILL_S * 0.6
            moved = {}
            for p in billing.partitions:
                pace = 4 if catching_up else 1
                assert p.committed_offset is not None
                moved[TopicPartition(p.topic, p.partition)] = min(
                    p.committed_offset + pace, p.end_offset)
            log.alter_offsets(scene.CONSUMER_GROUP, moved)


def main(path: Path) -> None:
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary) / "log"
        scene.fill(directory)
        stop = threading.Event()
        writer = threading.Thread(target=traffic, args=(directory, stop))
        with serving(directory, "--http", "127.0.0.1:0") as server, chromium() as browser:
            writer.start()
            try:
                with open_page(browser, server.http_url + "/", height=1000) as watched:
                    page = watched.page
                    page.locator(f'#topics-table tr.topic[data-topic="{scene.TOPIC}"]').click()
                    page.locator(f'#groups-table tr[data-group="{scene.CONSUMER_GROUP}"]').click()
                    page.locator("#letters-table tr.letter").first.click()
                    page.locator("#letter-detail").wait_for()
                    page.locator("#tail-topic").select_option(scene.TOPIC)
                    page.wait_for_timeout(FILL_S * 1000)
                    page.evaluate("window.scrollTo(0, 0)")
                    page.screenshot(path=str(path), full_page=True)
                    assert watched.errors == [], watched.errors
            finally:
                stop.set()
                writer.join()
    print(f"wrote {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PATH)
