"""The HTTP listener as a process: both doors at once, errors as JSON with a
stable code, the bearer token, the body limit, the bind rule and OpenAPI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

import mqlog
from tests.server._serve import RunningServer, server_command, serving


def test_topics_listed_and_described_as_the_library_sees_them(
        http_server: RunningServer, http: httpx.Client) -> None:
    with mqlog.open(http_server.directory) as log:
        log.create_topic("orders", partitions=3)
        log.append("orders", 1, [b"a", b"b"])
    assert http.get("/topics").json() == {"topics": ["orders"]}
    body = http.get("/topics/orders").json()
    assert body["name"] == "orders" and body["records"] == 2
    assert [(p["partition"], p["start_offset"], p["end_offset"])
            for p in body["partitions"]] == [(0, 0, 0), (1, 0, 2), (2, 0, 0)]


def test_errors_are_json_with_a_stable_code(http: httpx.Client) -> None:
    unknown = http.get("/topics/nope")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_topic"
    assert "nope" in unknown.json()["error"]["message"]
    missing = http.get("/no/such/route")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_oversized_body_refused_with_413(http: httpx.Client) -> None:
    response = http.post("/topics/t/records", content=b"x" * (2 << 20),
                         headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_openapi_document_served(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    assert document["info"]["title"] == "mqlog"
    assert "/topics/{topic}" in document["paths"]


def test_kafka_and_http_listeners_in_one_process(tmp_path: Path) -> None:
    with serving(tmp_path / "log", "--kafka", "127.0.0.1:0", "--http", "127.0.0.1:0") as server:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": server.address})
        admin.create_topics([NewTopic("both", 2)])["both"].result(timeout=30)
        body = httpx.get(f"{server.http_url}/topics/both", timeout=10).json()
        assert len(body["partitions"]) == 2


def test_bearer_token_required_when_set(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    with serving(tmp_path / "log", "--http", "127.0.0.1:0",
                 "--http-token-file", str(token_file)) as server:
        refused = httpx.get(f"{server.http_url}/topics", timeout=10)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["error"]["code"] == "unauthorized"
        wrong = httpx.get(f"{server.http_url}/topics", timeout=10,
                          headers={"Authorization": "Bearer s3cre"})
        assert wrong.status_code == 401
        allowed = httpx.get(f"{server.http_url}/topics", timeout=10,
                            headers={"Authorization": "Bearer s3cret"})
        assert allowed.status_code == 200


@pytest.mark.parametrize("options", [
    ["--http", "0.0.0.0:0"],
    ["--http", "127.0.0.1:0", "--http-token-file", "/nonexistent/token"],
    ["--http", "localhost"],
])
def test_bad_options_refused_before_anything_starts(tmp_path: Path, options: list[str]) -> None:
    result = subprocess.run(server_command(tmp_path / "log", *options), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "error" in result.stderr.lower()
    assert not (tmp_path / "log").exists()
