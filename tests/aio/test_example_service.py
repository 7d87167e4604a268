"""examples/aio_service.py runs as it is: orders posted over HTTP, and one appended by
another process, are written and counted by its background consumer."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mqlog

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "aio_service.py"
#: Longest the service may take to start listening on a loaded machine.
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(service: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert service.poll() is None, service.communicate()[1]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"the service did not listen on {port} in {START_TIMEOUT_S} s")


def call(port: int, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method="GET" if body is None else "POST",
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_the_service_produces_and_consumes(log_dir: Path) -> None:
    port = free_port()
    service = subprocess.Popen([sys.executable, EXAMPLE, log_dir, "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(service, port)
        first = call(port, "/orders", {"customer": "acme", "amount": 12.5})
        second = call(port, "/orders", {"customer": "acme", "amount": 2.5})
        assert first["partition"] == second["partition"]  # keyed by customer
        assert second["offset"] == first["offset"] + 1
        with mqlog.open(log_dir) as log:  # another process appends too
            log.append("orders", 0, [json.dumps({"customer": "zeta", "amount": 1.0}).encode()])
        counted = call(port, "/totals?at_least=3&wait_s=60")
        assert counted == {"orders": 3, "totals": {"acme": 15.0, "zeta": 1.0}}
    finally:
        service.send_signal(signal.SIGINT)
        _out, err = service.communicate(timeout=60)
    assert service.returncode == 0, err
    with mqlog.open(log_dir) as log:  # the consumer committed what it counted
        described = log.describe_group("totals")
        assert sum(p.lag for p in described.partitions) == 0
