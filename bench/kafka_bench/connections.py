"""Many connections: the broker's memory and CPU with 1,000 idle and 100 active clients.

Phases, each followed by a ``window_s`` sample of the broker process (read
from ``/proc/<pid>/status`` and ``/proc/<pid>/stat``: VmRSS at the end of the
window, CPU% = user + system time over the window / wall time, and the number
of sockets the process holds, from ``/proc/<pid>/fd``):

1. ``before``: the broker as the earlier measurements left it, no client.
2. ``idle``: ``idle`` plain TCP connections, each of which has sent one
   ApiVersions v0 request and read the answer, then stays silent.
3. ``active``: the idle ones plus ``active`` confluent-kafka producers (one
   child process holds them all) each sending ``rate`` records/s of 100 bytes
   (``linger.ms=5``) to one topic; the records the producers had delivered
   during the window give the achieved rate.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import struct
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
#: ApiVersions v0 request header: api key 18, version 0, correlation id, client id.
_CLIENT_ID = b"kafka-bench-idle"
_API_VERSIONS_V0 = struct.pack(">hhih", 18, 0, 1, len(_CLIENT_ID)) + _CLIENT_ID
_REQUEST = struct.pack(">i", len(_API_VERSIONS_V0)) + _API_VERSIONS_V0
SOCKET_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Sample:
    """The broker over one window: resident memory (KiB at the end), CPU% and
    its open sockets."""

    rss_kib: int
    cpu_percent: float
    sockets: int


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process ``pid`` has used so far."""
    return _cpu_ticks(pid) / _TICKS_PER_S


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def _sockets(pid: int) -> int:
    count = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                count += 1
        except OSError:
            continue  # closed since listdir
    return count


def sample(pid: int, window_s: float) -> Sample:
    """Watch process ``pid`` for ``window_s`` seconds."""
    ticks = _cpu_ticks(pid)
    start = time.monotonic()
    time.sleep(window_s)
    elapsed = time.monotonic() - start
    used_s = (_cpu_ticks(pid) - ticks) / _TICKS_PER_S
    return Sample(_rss_kib(pid), 100.0 * used_s / elapsed, _sockets(pid))


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return data


def open_idle(bootstrap: str, count: int) -> list[socket.socket]:
    """``count`` connections that each did one ApiVersions round trip."""
    host, port = bootstrap.rsplit(":", 1)
    sockets = []
    try:
        for _ in range(count):
            sock = socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT_S)
            sockets.append(sock)
            sock.sendall(_REQUEST)
            (size,) = struct.unpack(">i", _receive_exactly(sock, 4))
            _receive_exactly(sock, size)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _active_child(bootstrap: str, topic: str, producers: int, rate: int,
                  channel: Connection) -> None:
    """Run ``producers`` producers at ``rate`` records/s each until told to stop;
    answer each "count" with the records delivered so far."""
    from kafka_bench.clients import producer

    delivered = [0]

    def report(error: object, _message: object) -> None:
        if error is None:
            delivered[0] += 1

    clients = [producer(bootstrap, on_delivery=report) for _ in range(producers)]
    value = os.urandom(100)
    interval_s = 1.0 / rate
    channel.send("ready")
    next_due = time.monotonic()
    while True:
        if channel.poll(0):
            if channel.recv() == "stop":
                break
            channel.send(delivered[0])
        for client in clients:
            client.produce(topic, value)
            client.poll(0)
        next_due += interval_s
        time.sleep(max(0.0, next_due - time.monotonic()))
    for client in clients:
        client.flush(SOCKET_TIMEOUT_S)


#: Below this share of the asked rate the active phase did not measure what it says.
MIN_ACTIVE_SHARE = 0.9


def measure(pid: int, bootstrap: str, topic: str, idle: int, active: int, rate: int,
            window_s: float) -> dict[str, object]:
    """The three samples, the connection counts and the achieved active rate."""
    figures: dict[str, object] = {"before": asdict(sample(pid, window_s))}
    sockets = open_idle(bootstrap, idle)
    try:
        figures["with_idle"] = asdict(sample(pid, window_s))
        context = multiprocessing.get_context("spawn")
        parent_end, child_end = context.Pipe()
        child = context.Process(target=_active_child, name="active-producers",
                                args=(bootstrap, topic, active, rate, child_end))
        child.start()
        try:
            if not parent_end.poll(60.0) or parent_end.recv() != "ready":
                raise RuntimeError("the active producers did not start")
            time.sleep(1.0)  # connected and past their first metadata round trips
            parent_end.send("count")
            first = parent_end.recv()
            started = time.monotonic()
            figures["with_active"] = asdict(sample(pid, window_s))
            parent_end.send("count")
            delivered = parent_end.recv() - first
            achieved = delivered / (time.monotonic() - started)
            figures["active_records_per_s"] = achieved
            if achieved < active * rate * MIN_ACTIVE_SHARE:
                raise RuntimeError(
                    f"the {active} active producers delivered {achieved:,.0f} records/s of the "
                    f"{active * rate:,} asked: the broker refused or could not keep up with them "
                    f"(its connection limit?), so its figures are not those of {active} "
                    f"producers")
            parent_end.send("stop")
            child.join(60.0)
        finally:
            if child.is_alive():
                child.terminate()
            child.join()
    finally:
        for sock in sockets:
            sock.close()
    return figures
