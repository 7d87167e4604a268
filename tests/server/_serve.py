"""A real ``mqlog serve`` process for tests, and raw-socket Kafka calls.

:func:`start_server` runs ``python -m mqlog.cli --dir D serve --kafka
127.0.0.1:0 ...`` and waits for its ``listening on kafka://HOST:PORT`` line
(and ``listening on http://HOST:PORT`` with ``--http``);
:func:`stop_server` sends SIGTERM and returns the exit code and stderr;
:func:`serving` does both around a block, for a server with extra ``serve``
options (``--users``, ``--tls-cert``...) shared by a module's tests, and
:func:`serving_several` for several servers started at once.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import io
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from mqlog.server.kafka._codec import Entity, build

REPO_ROOT = Path(__file__).resolve().parents[2]
#: How long a server may take to print its listening line (a loaded machine).
START_TIMEOUT_S = 30.0
#: How long a graceful shutdown may take.
STOP_TIMEOUT_S = 30.0
_LISTENING = re.compile(r"^listening on (?P<scheme>kafka|http)://(?P<host>.+):(?P<port>\d+)$")


@dataclasses.dataclass
class RunningServer:
    """A server process the test started: ``address`` is the Kafka listener's
    ``HOST:PORT``, ``http_url`` the HTTP listener's ``http://HOST:PORT``. Its
    stderr goes to an unnamed temporary file (a pipe nobody reads until the
    end could fill and stall a server that logs much); :func:`stop_server`
    returns it."""

    process: subprocess.Popen
    directory: Path
    listeners: dict[str, tuple[str, int]]
    stderr: IO[str]

    @property
    def host(self) -> str:
        return self.listeners["kafka"][0]

    @property
    def port(self) -> int:
        return self.listeners["kafka"][1]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        host, port = self.listeners["http"]
        return f"http://{host}:{port}"


def server_command(directory: Path, *args: str) -> list[str]:
    """The command line of a server over ``directory`` (``args`` after ``serve``)."""
    return [sys.executable, "-m", "mqlog.cli", "--dir", os.fspath(directory), "serve", *args]


def start_server(directory: Path, *args: str, open_files: int | None = None) -> RunningServer:
    """Start a server on a free loopback port (unless ``args`` has ``--kafka`` or
    ``--http``) and wait until each of its listeners listens; ``open_files``: the
    soft limit of open files it starts with (``ulimit -Sn``)."""
    if "--kafka" not in args and "--http" not in args:
        args = ("--kafka", "127.0.0.1:0", *args)
    expected = {scheme for scheme in ("kafka", "http") if f"--{scheme}" in args}
    listeners: dict[str, tuple[str, int]] = {}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.fspath(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by stop_server
    command = server_command(directory, *args)
    if open_files is not None:
        command = ["sh", "-c", f'ulimit -Sn {open_files} && exec "$@"', "sh", *command]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=stderr, text=True)
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        # The listening lines come together: once one is in, the others may be
        # in the file object's buffer already, out of select's sight.
        ready, _, _ = ([process.stdout], [], []) if listeners else select.select(
            [process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline()
            found = _LISTENING.match(line.strip())
            if found:
                listeners[found["scheme"]] = (found["host"], int(found["port"]))
                if set(listeners) == expected:
                    return RunningServer(process, directory, listeners, stderr)
            if not line:
                break
    process.kill()
    process.communicate()
    raise AssertionError(f"the server did not start (exit {process.returncode}): "
                         f"{_read_all(stderr)}")


def stop_server(server: RunningServer, signalled: bool = False) -> tuple[int, str]:
    """SIGTERM the server (unless the test did: ``signalled``) and wait for it to
    exit; its exit code and what it wrote on stderr."""
    if not signalled:
        server.process.send_signal(signal.SIGTERM)
    try:
        server.process.communicate(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.communicate()
    return server.process.returncode, _read_all(server.stderr)


@contextlib.contextmanager
def serving(directory: Path, *args: str) -> Iterator[RunningServer]:
    """A server over ``directory`` started with ``serve`` options ``args`` (see
    :func:`start_server`); stopped at the end of the block, which fails unless
    it exits 0. Its stderr goes to the test's (pytest shows it with a failure)."""
    with serving_several([(directory, args)]) as (server,):
        yield server


@contextlib.contextmanager
def serving_several(servers: Sequence[tuple[Path, Sequence[str]]]
                    ) -> Iterator[list[RunningServer]]:
    """:func:`serving` for several servers (directory, ``serve`` options), started
    side by side (each start mostly waits for Python to import the codec)."""
    with concurrent.futures.ThreadPoolExecutor(len(servers)) as pool:
        starts = [pool.submit(start_server, directory, *args) for directory, args in servers]
    running = [start.result() for start in starts if start.exception() is None]
    try:
        for start in starts:
            start.result()  # the first failure to start, if any
        yield running
    finally:
        failures = []
        for server in running:
            code, stderr = stop_server(server)
            sys.stderr.write(stderr)
            if code != 0:
                failures.append(f"the server exited {code}: {stderr}")
        assert not failures, "\n".join(failures)


def _read_all(file: IO[str]) -> str:
    """All of ``file`` (the server's stderr so far), then closed."""
    with file:
        file.seek(0)
        return file.read()


# -- raw requests -----------------------------------------------------------------------

_HEADER_V1 = struct.Struct(">hhih")


def request_frame(api_key: int, version: int, correlation_id: int, body: bytes,
                  client_id: str = "test", flexible: bool = False) -> bytes:
    """A request frame with header v1 (v2 when ``flexible``: an empty tag buffer
    after the client id), ``body`` already encoded."""
    name = client_id.encode()
    header = _HEADER_V1.pack(api_key, version, correlation_id, len(name)) + name
    if flexible:
        header += b"\0"
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def encode_request(api_key: int, version: int, correlation_id: int, **fields: object) -> bytes:
    """A request frame built by kio from ``fields`` (the body's fields)."""
    from kio.index import load_request_schema
    from kio.serial import entity_writer

    schema = load_request_schema(api_key, version)
    header_type = schema.__header_schema__
    out = io.BytesIO()
    entity_writer(header_type)(out, build(header_type, request_api_key=api_key,
                                          request_api_version=version,
                                          correlation_id=correlation_id, client_id="test"))
    entity_writer(schema)(out, schema(**fields))
    payload = out.getvalue()
    return struct.pack(">i", len(payload)) + payload


def connect(server: RunningServer) -> socket.socket:
    """A socket connected to ``server`` with a 10 s timeout on every call."""
    sock = socket.create_connection((server.host, server.port), timeout=10)
    return sock


def read_frame(sock: socket.socket) -> bytes:
    """The next response frame's bytes (without the size prefix)."""
    (size,) = struct.unpack(">i", read_exactly(sock, 4))
    return read_exactly(sock, size)


def read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {count} bytes")
        data += chunk
    return data


def closed_by_peer(sock: socket.socket) -> bool:
    """True when the server closed ``sock`` (reads end) within the socket's timeout."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def decode_response(api_key: int, version: int, frame: bytes) -> tuple[int, Entity]:
    """(correlation id, body) of a response frame (kio's reader)."""
    from kio.index import load_response_schema
    from kio.serial import entity_reader

    schema = load_response_schema(api_key, version)
    header, used = entity_reader(schema.__header_schema__)(frame, 0)
    body, _ = entity_reader(schema)(frame, used)
    return header.correlation_id, body
