"""The peer servers: Redis and NATS, started on 127.0.0.1 for one run, data in a
temporary directory, and always stopped again.

Each server runs as a child of the harness in its own session (so a Ctrl-C in
the terminal reaches the harness, which then stops the servers in order) and
with ``PR_SET_PDEATHSIG``, so the kernel ends it even if the harness itself is
killed with SIGKILL and has no chance to clean up.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

HOST = "127.0.0.1"
#: Debian installs nats-server into /usr/sbin, which is not on every PATH.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin"])
STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
_PR_SET_PDEATHSIG = 1


def find_binary(name: str) -> str | None:
    """Path of a server binary, or None when it is not installed."""
    return shutil.which(name, path=SEARCH_PATH)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the harness dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def wait_listening(process: subprocess.Popen, port: int, log_path: str,
                   timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    """Wait until ``port`` accepts connections; raise with the server's log if
    the process exits or the port stays closed for ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}:\n"
                               f"{log_tail(log_path)}")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{process.args[0]} did not listen on {HOST}:{port} within "
                       f"{timeout_s:.0f} s:\n{log_tail(log_path)}")


def log_tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return "(no log)"


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within STOP_TIMEOUT_S."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True)
class Server:
    """A running server: its name, version line, port and data directory."""

    name: str
    version: str
    port: int
    data_dir: str
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"{HOST}:{self.port}"


@contextmanager
def _running(name: str, command: Sequence[str], port: int, data_dir: str,
             version: str) -> Iterator[Server]:
    log_path = os.path.join(data_dir, f"{name}.log")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=data_dir,
                                   start_new_session=True, preexec_fn=die_with_parent)
    try:
        wait_listening(process, port, log_path)
        yield Server(name, version, port, data_dir, process)
    finally:
        stop(process)


def _version(binary: str) -> str:
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10,
                          check=False)
    return (done.stdout or done.stderr).strip().splitlines()[0]


@contextmanager
def redis_server(binary: str, data_dir: str) -> Iterator[Server]:
    """redis-server with the append-only file on (``appendfsync everysec`` to
    start with; the harness switches it per variant with CONFIG SET), no RDB
    snapshots, listening on 127.0.0.1 only."""
    port = free_port()
    os.makedirs(data_dir, exist_ok=True)
    command = [binary, "--bind", HOST, "--port", str(port), "--dir", data_dir,
               "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
               "--daemonize", "no", "--protected-mode", "yes"]
    with _running("redis", command, port, data_dir, _version(binary)) as server:
        yield server


@contextmanager
def nats_server(binary: str, data_dir: str) -> Iterator[Server]:
    """nats-server with JetStream, its store in ``data_dir``, on 127.0.0.1 only."""
    port = free_port()
    os.makedirs(data_dir, exist_ok=True)
    config = os.path.join(data_dir, "nats.conf")
    with open(config, "w") as handle:
        handle.write(f'listen: "{HOST}:{port}"\n'
                     f'jetstream {{\n  store_dir: "{os.path.join(data_dir, "jetstream")}"\n}}\n')
    with _running("nats", [binary, "-c", config], port, data_dir, _version(binary)) as server:
        yield server
