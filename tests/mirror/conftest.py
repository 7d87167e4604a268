"""Fixtures of the mirror tests: a CliRunner, and the Kafka-protocol brokers a
mirror runs against (``mqlog serve`` and Tansu 0.6.0, started here on loopback)."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from tests.server._brokers import Broker, broker, skip_on_tansu, unique

__all__ = ["Broker", "broker", "skip_on_tansu", "unique"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def sigint() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt outside a mirror, also where the test run
    started with SIGINT ignored (a background job)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
