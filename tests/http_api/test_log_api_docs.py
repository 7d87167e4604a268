"""The curl examples of docs/http.md's "Log API" section run against a real server,
twice in a row, and answer what the docs show.

The section's ``sh`` blocks (except those under ``<!-- not run: ... -->``) run
in order with ``sh -e``, ``http://127.0.0.1:8080`` replaced by the server's
address. A block followed by a ``json`` block must print JSON of the same
shape: the same keys at every level (the first item of each list compared),
values aside, since offsets and times differ from run to run. Before the
first run the log gets what the examples read: topic ``jobs`` with a queue
group ``resizers`` that dead-lettered two of its three records.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import mqlog
from tests.server._serve import REPO_ROOT, serving

DOC = REPO_ROOT / "docs" / "http.md"
DOC_URL = "http://127.0.0.1:8080"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_NOT_RUN = re.compile(r"<!--\s*not run:[^>]*-->\s*$")


def examples(text: str) -> list[tuple[str, object | None]]:
    """(shell code, the JSON shown after it or None) of the Log API section."""
    heading = re.search(r"^## Log API$", text, re.MULTILINE)
    assert heading is not None, "no Log API section"
    following = re.compile(r"^## ", re.MULTILINE).search(text, heading.end())
    section = text[heading.end():following.start() if following else len(text)]
    fences = list(_FENCE.finditer(section))
    found = []
    for index, fence in enumerate(fences):
        if fence.group(1) != "sh" or _NOT_RUN.search(section[:fence.start()].rstrip("\n")):
            continue
        following = fences[index + 1] if index + 1 < len(fences) else None
        shown = None
        if following is not None and following.group(1) == "json" and not section[
                fence.end():following.start()].strip():
            shown = json.loads(following.group(2))
        found.append((fence.group(2), shown))
    return found


def assert_same_shape(shown: object, got: object, where: str = "$") -> None:
    """``got`` has ``shown``'s keys at every level (lists: their first items)."""
    if isinstance(shown, dict):
        assert isinstance(got, dict) and set(got) == set(shown), (where, shown, got)
        for key, value in shown.items():
            assert_same_shape(value, got[key], f"{where}.{key}")
    elif isinstance(shown, list):
        assert isinstance(got, list), (where, got)
        if shown and got:
            assert_same_shape(shown[0], got[0], f"{where}[0]")


def test_the_section_has_examples_with_outputs() -> None:
    found = examples(DOC.read_text())
    assert len(found) >= 8 and sum(shown is not None for _, shown in found) >= 7
    assert all(DOC_URL in code for code, _ in found)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the examples need curl")
def test_the_curl_examples_answer_what_the_docs_show(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    with mqlog.open(directory) as log:
        log.create_topic("jobs")
        log.append("jobs", 0, [b"resize 1.png", b"resize 2.png"])
        worker = log.queue("resizers", "jobs", max_deliveries=1)
        for message in worker.receive(max_messages=2):
            message.nack(delay_s=0, reason="ValueError: no such file")
        assert worker.receive(max_messages=2) == []  # both dead-lettered now
        worker.close()
        log.append("jobs", 0, [b"resize 3.png"])
    with serving(directory, "--http", "127.0.0.1:0") as server:
        for _ in range(2):
            for code, shown in examples(DOC.read_text()):
                done = subprocess.run(["sh", "-e", "-c", code.replace(DOC_URL, server.http_url)],
                                      cwd=tmp_path, capture_output=True, text=True, timeout=60)
                assert done.returncode == 0, (code, done.stderr)
                assert '"error"' not in done.stdout, (code, done.stdout)
                if shown is not None:
                    assert_same_shape(shown, json.loads(done.stdout))
