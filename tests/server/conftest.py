"""Fixtures for tests of ``mqlog serve``: a real server process per test.

``kafka_server`` starts ``mqlog --dir D serve --kafka 127.0.0.1:0`` over a
fresh log directory, waits for its listening line and yields a
:class:`~tests.server._serve.RunningServer` (``.address`` is ``HOST:PORT``,
``.directory`` the log directory, which the test may open embedded at the same
time). At teardown it sends SIGTERM, checks the server exits 0 and writes its
stderr to the test's (pytest shows it with a failure). A server with other
``serve`` options (``--users``, ``--tls-cert``...) comes from
:func:`~tests.server._serve.serving`, usually in a module-scoped fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server._serve import RunningServer, serving


@pytest.fixture
def kafka_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A running server over ``tmp_path / "log"``; stopped (exit 0) after the test."""
    with serving(tmp_path / "log") as server:
        yield server
