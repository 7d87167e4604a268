"""The Kafka-protocol brokers that tests of ``kafka://`` logs run against.

``broker`` is a module-scoped fixture parametrized over the two brokers the
tests start themselves on loopback: ``mqlog serve`` (a real server process
over a fresh directory) and Tansu 0.6.0 (a Kafka-compatible broker written by
others, memory storage; tests/server/_tansu.py). A conftest imports it to
offer it. Each test names its topics and groups uniquely (:func:`unique`), so
one broker serves a whole module. Tansu 0.6.0 has bugs that block some cases;
a test that meets one calls :func:`skip_on_tansu` with the reason, and runs
against ``mqlog serve`` only.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import pytest

from tests.server._serve import serving
from tests.server._tansu import running_tansu


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
