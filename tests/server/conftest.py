"""Fixtures for tests of ``mqlog serve``: a real server process per test.

``kafka_server`` starts ``mqlog --dir D serve --kafka 127.0.0.1:0`` over a
fresh log directory, waits for its listening line and yields a
:class:`~tests.server._serve.RunningServer` (``.address`` is ``HOST:PORT``,
``.directory`` the log directory, which the test may open embedded at the same
time). At teardown it sends SIGTERM, checks the server exits 0 and writes its
stderr to the test's (pytest shows it with a failure).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server._serve import RunningServer, start_server, stop_server


@pytest.fixture
def kafka_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A running server over ``tmp_path / "log"``; stopped (exit 0) after the test."""
    server = start_server(tmp_path / "log")
    try:
        yield server
    finally:
        code, stderr = stop_server(server)
        sys.stderr.write(stderr)  # shown with a failing test's report
        assert code == 0, f"the server exited {code}: {stderr}"
