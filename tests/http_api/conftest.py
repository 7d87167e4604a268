"""Fixtures for tests of the HTTP door: a real ``mqlog serve --http`` process.

``http_server`` starts ``mqlog --dir D serve --http 127.0.0.1:0`` over a fresh
log directory and yields a :class:`~tests.server._serve.RunningServer`
(``.http_url`` is ``http://HOST:PORT``, ``.directory`` the log directory, which
the test may open embedded at the same time); ``http`` is an
:class:`httpx.Client` on it. At teardown the server gets SIGTERM and must exit 0.

``shared_http_server`` and ``shared_http`` are the same, one per test module:
for tests that each use topics and groups of their own (``unique_name``), so
that a module starts one server, not one per test.
"""

from __future__ import annotations

import re
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


@pytest.fixture(scope="module")
def shared_http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """An HTTP-only server shared by the tests of one module."""
    with serving(tmp_path_factory.mktemp("shared") / "log", "--http", "127.0.0.1:0") as server:
        yield server


@pytest.fixture
def shared_http(shared_http_server: RunningServer) -> Iterator[httpx.Client]:
    """A keep-alive client of ``shared_http_server`` (10 s timeouts)."""
    with httpx.Client(base_url=shared_http_server.http_url, timeout=10) as client:
        yield client


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A topic or group name no other test uses: the test's name, made valid."""
    return re.sub(r"[^a-zA-Z0-9._-]", "-", request.node.name)[:200]
