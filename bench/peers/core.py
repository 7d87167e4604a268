"""What every system adapter provides, and the pieces they share.

An adapter is one system at one durability setting (a :class:`Setting`). It
offers timed :class:`Case` objects (produce and consume workloads), the sending
end of the latency run (one message per call, in the harness process) and a
JSON-able description from which :mod:`peers.latency` builds the receiving end
in another process.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

#: Records per batch call, poll, fetch or pipeline, for every system alike.
BATCH = 1000
#: The latency stamp at the start of every latency message: time.monotonic_ns().
STAMP = struct.Struct("<Q")
#: Durability classes. "fsync": flushed to disk before the call returns (per
#: message or per batch). "relaxed": in the page cache, flushed on a timer.
FSYNC = "fsync"
RELAXED = "relaxed"


@dataclass(frozen=True)
class Setting:
    """One system at one durability setting: the label of each of its figures."""

    system: str
    durability: str
    sync_class: str
    #: mqlog only: the figure peers of the same class are compared with.
    reference: bool = False


@dataclass
class Case:
    """One timed workload of one adapter.

    ``prepare(records)`` runs untimed before each run: a fresh queue, stream or
    log and, for consume cases, a backlog of ``records`` messages. ``run(records,
    deadline)`` is timed: it works until ``records`` are done or
    ``time.perf_counter()`` passes ``deadline`` and returns how many it did.
    """

    workload: str  # "produce" | "consume"
    form: str  # "single" | "batch" | "async" | "stream" | "queue"
    call: str  # the exact calls, as shown in the table
    run: Callable[[int, float], int]
    prepare: Callable[[int], None] = field(default=lambda records: None)
    #: A consume case whose backlog is fixed instead of the run's record count.
    backlog: int | None = None
    note: str = ""


class Adapter:
    """Base class of the system adapters (see the module docstring)."""

    setting: Setting
    #: The calls the latency run makes, as shown in its row.
    latency_calls: str = ""
    #: The consume form whose measured rate bounds the latency run's rate (the
    #: latency consumer receives in batches, "stream", or one by one, "queue").
    latency_consume_form: str = "stream"

    def cases(self, values: list[bytes]) -> list[Case]:
        raise NotImplementedError

    def start_latency(self) -> None:
        """Untimed, before the receiver starts: a fresh, empty stream or queue."""

    def send_paced(self, rate: int, count: int, value_bytes: int) -> None:
        """Send ``count`` stamped messages at ``rate`` per second, one per call."""
        raise NotImplementedError

    def receiver(self) -> dict:
        """What :func:`peers.latency.receive` needs to build the receiving end."""
        raise NotImplementedError

    def close(self) -> None:
        """Release clients and files (servers are stopped by the harness)."""


def values_of(size: int, count: int = BATCH) -> list[bytes]:
    """``count`` distinct random values of ``size`` bytes, reused in turn."""
    blob = os.urandom(size * count)
    return [blob[i : i + size] for i in range(0, len(blob), size)]


def stamped(value_bytes: int) -> Callable[[], bytes]:
    """A maker of latency messages: the send time, then padding to ``value_bytes``."""
    padding = os.urandom(value_bytes - STAMP.size)
    pack, clock = STAMP.pack, time.monotonic_ns
    return lambda: pack(clock()) + padding


def latency_ns(value: bytes | memoryview, now_ns: int) -> int:
    """How long ago the message carrying ``value`` was made by :func:`stamped`."""
    return now_ns - STAMP.unpack_from(value)[0]


def paced(send: Callable[[bytes], object], rate: int, count: int, value_bytes: int) -> None:
    """Call ``send(message)`` ``count`` times at ``rate`` per second: sleep until the
    next message is due, then send every message that is due (a late wake-up
    sends a short burst; the average rate holds)."""
    make = stamped(value_bytes)
    interval_ns = 1_000_000_000 / rate
    start = time.monotonic_ns()
    sent = 0
    while sent < count:
        due = min(int((time.monotonic_ns() - start) / interval_ns) + 1, count)
        while sent < due:
            send(make())
            sent += 1
        wait_ns = start + sent * interval_ns - time.monotonic_ns()
        if wait_ns > 0:
            time.sleep(wait_ns / 1e9)


async def paced_async(send: Callable[[bytes], Awaitable[object]], rate: int, count: int,
                      value_bytes: int) -> None:
    """:func:`paced` for a coroutine ``send`` (the NATS client is asyncio-only)."""
    make = stamped(value_bytes)
    interval_ns = 1_000_000_000 / rate
    start = time.monotonic_ns()
    sent = 0
    while sent < count:
        due = min(int((time.monotonic_ns() - start) / interval_ns) + 1, count)
        while sent < due:
            await send(make())
            sent += 1
        wait_ns = start + sent * interval_ns - time.monotonic_ns()
        if wait_ns > 0:
            await asyncio.sleep(wait_ns / 1e9)


def cycle(values: list[bytes], records: int) -> list[bytes]:
    """``records`` values taken from ``values`` in turn."""
    whole, rest = divmod(records, len(values))
    return values * whole + values[:rest]
