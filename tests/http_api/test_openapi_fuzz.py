"""Every operation of ``/openapi.json`` fuzzed with schemathesis against a real
``mqlog serve --http`` process: no response is a server error (5xx), and every
response matches the document (its status is declared, its content type and
body match the declared schema).

Generic: the operations are read from the served document, so routes added
later are covered too. (Driven with hypothesis directly rather than through
schemathesis' pytest loader, which does not run under pytest 9.) Bounded:
``EXAMPLES`` cases per operation, a short long-poll ``wait`` (a generated one
is cut to ``WAIT_CAP_S``), so the whole run stays well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import mqlog
from tests.server._serve import RunningServer, serving

#: Cases per operation.
EXAMPLES = 25
#: Longest long poll a case may ask for (seconds).
WAIT_CAP_S = 0.05
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server over a log with a few topics and records, so that some cases
    reach past the "unknown topic" answers."""
    directory = tmp_path_factory.mktemp("fuzz") / "log"
    with mqlog.open(directory) as log:
        for name in ("0", "a", "orders"):
            log.create_topic(name, partitions=2)
            log.append(name, 0, [b"x", b"\xff"])
    with serving(directory, "--http", "127.0.0.1:0") as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(fuzzed_server: RunningServer) -> schemathesis.schemas.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzzed_server.http_url}/openapi.json",
                                         timeout=30)


def test_no_server_errors_and_responses_match_the_document(
        api_schema: schemathesis.schemas.BaseSchema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 6
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            wait = (case.query or {}).get("wait")
            if isinstance(wait, (int, float)) and not isinstance(wait, bool) and (
                wait > WAIT_CAP_S
            ):
                case.query["wait"] = WAIT_CAP_S
            case.call_and_validate(checks=CHECKS, timeout=30)

        fuzz()


def test_the_document_lists_the_queue_api(api_schema: schemathesis.schemas.BaseSchema
                                          ) -> None:
    paths = api_schema.raw_schema["paths"]
    assert {"/queues/{topic}/messages", "/queues/{topic}/messages/{receipt_handle}",
            "/queues/{topic}/messages/{receipt_handle}/release",
            "/queues/{topic}/messages/{receipt_handle}/visibility"} <= set(paths)
