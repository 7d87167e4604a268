"""The HTTP queue API (``mqlog serve --http``): requests and messages per second.

The bench starts ``mqlog serve --http 127.0.0.1:0`` over a fresh log directory
(topic ``bench``, 4 partitions, durability ``--durability``, default
``interval``) and drives it from ``--clients`` client processes (default 4),
each with one keep-alive connection. The client is a minimal HTTP/1.1 client
on a raw socket (the request bytes built once; the response read by its
``Content-Length``), because ``http.client`` and httpx cost more CPU per
request than the server's own work and would measure the client. Bodies are
100-byte values.

Workloads (each timed from the moment every client is connected and ready
to the last response):

* post_one: ``POST /queues/bench/messages`` ``{"message": "<100 bytes>"}``,
  one message per request. Figure: requests/s (target >= 5,000).
* post_batch: the same with ``{"messages": [... 100 ...]}``. Figure:
  messages/s (target >= 150,000).
* get_delete: ``--records`` messages appended beforehand (embedded, to the
  topic ``drained``, 4 partitions); each
  client loops ``GET ...?group=bench&batch_size=10`` then ``DELETE`` of each
  receipt handle, until a GET returns nothing. Figure: messages/s received and
  deleted (target >= 3,000).

With each figure: the server's CPU time per request or message (user +
system, from /proc: less sensitive to other load on the machine than the
rates) and the 1-minute load average when the workload started.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import _common

import mqlog

BENCH = "http_bench"
TARGET_POST_ONE_PER_S = 5_000
TARGET_POST_BATCH_PER_S = 150_000
TARGET_GET_DELETE_PER_S = 3_000
BATCH = 100
RECEIVE = 10
PARTITIONS = 4
#: The topic get_delete drains (filled beforehand).
DRAINED = "drained"
_LISTENING = re.compile(r"^listening on http://(?P<host>.+):(?P<port>\d+)$")


class Connection:
    """One keep-alive HTTP/1.1 connection on a raw socket."""

    def __init__(self, host: str, port: int) -> None:
        self._socket = socket.create_connection((host, port))
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._host = f"{host}:{port}".encode()
        self._buffer = b""

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """Send one request and read its response: (status, body)."""
        head = b"%s %s HTTP/1.1\r\nHost: %s\r\n" % (method.encode(), path.encode(), self._host)
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        self._socket.sendall(head + b"\r\n" + (body or b""))
        return self.response()

    def send_prepared(self, data: bytes) -> tuple[int, bytes]:
        self._socket.sendall(data)
        return self.response()

    def prepared(self, method: str, path: str, body: bytes) -> bytes:
        """The bytes of a request to send many times with :meth:`send_prepared`."""
        return (b"%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % (method.encode(), path.encode(), self._host,
                                                 len(body))) + body

    def response(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            self._buffer = rest
            self._fill()
            rest = self._buffer
        self._buffer = rest[length:]
        return status, rest[:length]

    def _fill(self) -> None:
        chunk = self._socket.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self._buffer += chunk

    def close(self) -> None:
        self._socket.close()


def value_text() -> str:
    return "x" * _common.VALUE_BYTES


def post_one(connection: Connection, requests: int) -> int:
    data = connection.prepared("POST", "/queues/bench/messages",
                               json.dumps({"message": value_text()}).encode())
    for _ in range(requests):
        status, body = connection.send_prepared(data)
        if status != 201:
            raise RuntimeError(f"POST answered {status}: {body[:200]!r}")
    return requests


def post_batch(connection: Connection, requests: int) -> int:
    body = json.dumps({"messages": [{"message": value_text()}] * BATCH}).encode()
    data = connection.prepared("POST", "/queues/bench/messages", body)
    for _ in range(requests):
        status, answer = connection.send_prepared(data)
        if status != 201:
            raise RuntimeError(f"POST answered {status}: {answer[:200]!r}")
    return requests * BATCH


def get_delete(connection: Connection, _requests: int) -> int:
    handled = 0
    path = f"/queues/{DRAINED}/messages?group=bench&batch_size={RECEIVE}&visibility=60"
    while True:
        status, body = connection.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET answered {status}: {body[:200]!r}")
        messages = json.loads(body)["messages"]
        if not messages:
            return handled
        for message in messages:
            status, body = connection.request(
                "DELETE", f"/queues/{DRAINED}/messages/{message['receipt_handle']}")
            if status != 204:
                raise RuntimeError(f"DELETE answered {status}: {body[:200]!r}")
        handled += len(messages)


WORKLOADS: dict[str, Callable[[Connection, int], int]] = {
    "post_one": post_one, "post_batch": post_batch, "get_delete": get_delete}


def client(workload: str, host: str, port: int, requests: int, ready: Any, start: Any,
           results: Any) -> None:
    """One client process: connect, say so, wait for the start, run, report."""
    connection = Connection(host, port)
    connection.request("GET", "/topics")  # warm the connection
    ready.release()
    start.wait()
    done = WORKLOADS[workload](connection, requests)
    results.put((done, time.perf_counter()))
    connection.close()


def server_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(workload: str, host: str, port: int, pid: int, clients: int, requests: int
        ) -> tuple[int, float, float, float]:
    """(items done, seconds, server CPU seconds, load average at the start)."""
    context = multiprocessing.get_context("spawn")
    ready, start, results = context.Semaphore(0), context.Event(), context.Queue()
    processes = [context.Process(target=client, args=(workload, host, port, requests, ready,
                                                      start, results)) for _ in range(clients)]
    for process in processes:
        process.start()
    for _ in processes:
        ready.acquire()
    load = os.getloadavg()[0]
    cpu_before = server_cpu_s(pid)
    began = time.perf_counter()
    start.set()
    finished = [results.get(timeout=600) for _ in processes]
    elapsed = max(end for _, end in finished) - began
    cpu = server_cpu_s(pid) - cpu_before
    for process in processes:
        process.join(timeout=60)
        if process.exitcode != 0:
            raise RuntimeError(f"a {workload} client failed (exit {process.exitcode})")
    return sum(done for done, _ in finished), elapsed, cpu, load


def start_server(directory: str) -> tuple[subprocess.Popen, str, int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mqlog.cli", "--dir", directory, "serve", "--http",
         "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    found = _LISTENING.match(line)
    if found is None:
        process.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    return process, found["host"], int(found["port"])


def extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--durability", default="interval",
                        choices=["none", "interval", "always"],
                        help="the topic's durability (default interval)")
    parser.add_argument("--only", choices=sorted(WORKLOADS), nargs="+",
                        help="run only these workloads")


def main() -> None:
    args = _common.arguments(__doc__ or "", records=[20_000], quick=[600], extra=extra)
    records: int = args.records
    clients: int = args.clients
    chosen = args.only or list(WORKLOADS)
    with _common.temporary_log_dir("http") as directory:
        with mqlog.open(directory) as log:
            log.create_topic(_common.TOPIC, partitions=PARTITIONS, durability=args.durability)
        server, host, port = start_server(directory)
        try:
            common = {"clients": clients, "durability": args.durability,
                      "value_bytes": _common.VALUE_BYTES}
            if "post_one" in chosen:
                per_client = max(records // clients, 1)
                done, seconds, cpu, load = run("post_one", host, port, server.pid, clients,
                                               per_client)
                _common.emit(BENCH, "post_one_requests_per_s", done / seconds, "requests/s",
                             records=done, target_min=TARGET_POST_ONE_PER_S,
                             server_cpu_us_per_request=round(cpu / done * 1e6, 1),
                             load_1m=round(load, 2), **common)
            if "post_batch" in chosen:
                per_client = max(records * 5 // BATCH // clients, 1)
                done, seconds, cpu, load = run("post_batch", host, port, server.pid, clients,
                                               per_client)
                _common.emit(BENCH, "post_batch_messages_per_s", done / seconds, "messages/s",
                             records=done, target_min=TARGET_POST_BATCH_PER_S,
                             batch=BATCH, server_cpu_us_per_message=round(cpu / done * 1e6, 2),
                             load_1m=round(load, 2), **common)
            if "get_delete" in chosen:
                with mqlog.open(directory) as log:
                    log.create_topic(DRAINED, partitions=PARTITIONS, durability=args.durability)
                    values = [value_text().encode()] * 1000
                    for partition in range(PARTITIONS):
                        for first in range(0, records // PARTITIONS, len(values)):
                            count = min(len(values), records // PARTITIONS - first)
                            log.append(DRAINED, partition, values[:count])
                done, seconds, cpu, load = run("get_delete", host, port, server.pid, clients, 0)
                _common.emit(BENCH, "get_delete_messages_per_s", done / seconds, "messages/s",
                             records=done, target_min=TARGET_GET_DELETE_PER_S,
                             batch_size=RECEIVE,
                             server_cpu_us_per_message=round(cpu / done * 1e6, 1),
                             load_1m=round(load, 2), **common)
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
