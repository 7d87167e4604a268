"""Fixtures for tests of the HTTP door: a real ``mqlog serve --http`` process.

``http_server`` starts ``mqlog --dir D serve --http 127.0.0.1:0`` over a fresh
log directory and yields a :class:`~tests.server._serve.RunningServer`
(``.http_url`` is ``http://HOST:PORT``, ``.directory`` the log directory, which
the test may open embedded at the same time); ``http`` is an
:class:`httpx.Client` on it. At teardown the server gets SIGTERM and must exit 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server._serve import RunningServer, serving


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A running HTTP-only server over ``tmp_path / "log"``; stopped (exit 0) after."""
    with serving(tmp_path / "log", "--http", "127.0.0.1:0") as server:
        yield server


@pytest.fixture
def http(http_server: RunningServer) -> Iterator[httpx.Client]:
    """A keep-alive client of ``http_server`` (10 s timeouts)."""
    with httpx.Client(base_url=http_server.http_url, timeout=10) as client:
        yield client
