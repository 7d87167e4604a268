"""Fixtures of the mirror tests: a CliRunner, and the Kafka-protocol brokers a
mirror runs against (``mqlog serve`` and Tansu 0.6.0, started here on loopback)."""

from __future__ import annotations

import dataclasses
import signal
import uuid
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from tests.server._serve import serving
from tests.server._tansu import running_tansu


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


@dataclasses.dataclass(frozen=True)
class Broker:
    """A running broker: ``kind`` is ``serve`` or ``tansu``; ``url`` its kafka:// URL."""

    kind: str
    address: str

    @property
    def url(self) -> str:
        return f"kafka://{self.address}"


@pytest.fixture(scope="module", params=["serve", "tansu"])
def broker(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    work = tmp_path_factory.mktemp(request.param)
    if request.param == "serve":
        with serving(work / "log") as server:
            yield Broker("serve", server.address)
    else:
        with running_tansu(work) as address:
            yield Broker("tansu", address)


def skip_on_tansu(broker: Broker, reason: str) -> None:
    """Skip this case on Tansu, whose bug ``reason`` blocks it (it runs on mqlog serve)."""
    if broker.kind == "tansu":
        pytest.skip(f"Tansu 0.6.0 bug: {reason}")


def unique(prefix: str) -> str:
    """A topic or group name no other test of the module uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
