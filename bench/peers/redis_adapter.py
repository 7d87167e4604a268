"""Redis Streams through redis-py, over TCP to a redis-server on 127.0.0.1.

The server runs with the append-only file on and no RDB snapshots; each
adapter sets ``appendfsync`` (``everysec`` or ``always``) with CONFIG SET
before each of its cases and reads it back. With ``always``, Redis fsyncs the
AOF once per event-loop iteration before replying, so a pipeline of 1,000
XADDs shares flushes while single calls pay one each. XREADGROUP changes the
group's pending list and XACK removes from it: both are AOF writes too.

Every message is one stream entry with one field, ``v``, holding the value.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from peers import core

KEY = "bench"
GROUP = "bench"
CONSUMER = "c1"
FIELD = b"v"


class RedisAdapter(core.Adapter):
    def __init__(self, port: int, appendfsync: str) -> None:
        self.appendfsync = appendfsync
        self.setting = core.Setting(
            "Redis Streams", f"AOF, appendfsync {appendfsync}",
            core.FSYNC if appendfsync == "always" else core.RELAXED)
        self.latency_calls = ("XADD, 1 per call -> XREADGROUP BLOCK 100 COUNT 1000 + XACK of "
                              "what it returned")
        self.port = port
        self.client = redis.Redis(host="127.0.0.1", port=port)

    def _fresh(self) -> None:
        """Set this adapter's appendfsync and start from an empty stream."""
        self.client.config_set("appendfsync", self.appendfsync)
        in_force = self.client.config_get("appendfsync")["appendfsync"]
        if in_force != self.appendfsync:
            raise RuntimeError(f"redis-server runs with appendfsync {in_force}")
        self.client.delete(KEY)

    def _fill(self, values: list[bytes], records: int) -> None:
        for start in range(0, records, core.BATCH):
            pipe = self.client.pipeline(transaction=False)
            for number in range(start, min(start + core.BATCH, records)):
                pipe.xadd(KEY, {FIELD: values[number % len(values)]})
            pipe.execute()

    def close(self) -> None:
        self.client.delete(KEY)
        self.client.close()

    def cases(self, values: list[bytes]) -> list[core.Case]:
        count = len(values)

        def prepare_empty(records: int) -> None:
            self._fresh()

        def prepare_backlog(records: int) -> None:
            self._fresh()
            self._fill(values, records)
            self.client.xgroup_create(KEY, GROUP, id="0")

        def xadd_single(records: int, deadline: float) -> int:
            xadd, clock = self.client.xadd, time.perf_counter
            for number in range(records):
                if clock() > deadline:
                    return number
                xadd(KEY, {FIELD: values[number % count]})
            return records

        def xadd_pipelined(records: int, deadline: float) -> int:
            done = 0
            while done < records and time.perf_counter() <= deadline:
                pipe = self.client.pipeline(transaction=False)
                chunk = min(core.BATCH, records - done)
                for number in range(done, done + chunk):
                    pipe.xadd(KEY, {FIELD: values[number % count]})
                pipe.execute()
                done += chunk
            return done

        def read_ack(per_call: int) -> Callable[[int, float], int]:
            def run(records: int, deadline: float) -> int:
                client, done = self.client, 0
                while done < records and time.perf_counter() <= deadline:
                    reply = client.xreadgroup(GROUP, CONSUMER, {KEY: ">"}, count=per_call)
                    if not reply:
                        break  # the backlog is drained
                    ids = [entry_id for entry_id, _fields in reply[0][1]]
                    client.xack(KEY, GROUP, *ids)
                    done += len(ids)
                return done

            return run

        return [
            core.Case("produce", "single", "XADD, 1 per call", xadd_single, prepare_empty),
            core.Case("produce", "batch", f"XADD, pipelines of {core.BATCH:,}", xadd_pipelined,
                      prepare_empty),
            core.Case("consume", "stream",
                      f"XREADGROUP COUNT {core.BATCH:,} + XACK of the {core.BATCH:,} ids",
                      read_ack(core.BATCH), prepare_backlog),
            core.Case("consume", "queue", "XREADGROUP COUNT 1 + XACK, per message",
                      read_ack(1), prepare_backlog),
        ]

    def start_latency(self) -> None:
        self._fresh()
        self.client.xgroup_create(KEY, GROUP, id="$", mkstream=True)

    def send_paced(self, rate: int, count: int, value_bytes: int) -> None:
        xadd = self.client.xadd
        core.paced(lambda value: xadd(KEY, {FIELD: value}), rate, count, value_bytes)

    def receiver(self) -> dict:
        return {"system": "redis", "port": self.port}


def receive(spec: dict, count: int, max_s: float, ready: Callable[[], object]) -> list[int]:
    """The latency consumer: XREADGROUP BLOCK 100 ms, then XACK what came back."""
    client = redis.Redis(host="127.0.0.1", port=spec["port"])
    latencies: list[int] = []
    ready()
    deadline = time.monotonic() + max_s
    while len(latencies) < count and time.monotonic() < deadline:
        reply = client.xreadgroup(GROUP, CONSUMER, {KEY: ">"}, count=core.BATCH, block=100)
        now = time.monotonic_ns()
        if not reply:
            continue
        entries = reply[0][1]
        latencies.extend(core.latency_ns(fields[FIELD], now) for _id, fields in entries)
        client.xack(KEY, GROUP, *[entry_id for entry_id, _fields in entries])
    client.close()
    return latencies
