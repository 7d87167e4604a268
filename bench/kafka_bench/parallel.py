"""The produce and consume workloads from several client processes at once
(``--clients N``), so that the broker, not one client, sets the pace.

* produce: N processes each produce ``count / N`` of the records (the same
  settings as kafka_bench.clients.produce; record ``i`` of a process goes to
  partition ``i % P``);
* consume: N processes each read the whole topic with ``assign()`` from the
  beginning (a fan-out: N x ``count`` records delivered).

Each process builds its client, then waits at a barrier; the figure is the
records moved by all of them over the wall time from the earliest start of a
process's timed part to the latest end (CLOCK_MONOTONIC: one clock for every
process on Linux). The processes are started with ``multiprocessing``'s spawn
method; a process that fails fails the measurement.
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

from kafka_bench import clients

#: How long a process may take to connect and finish its part.
PROCESS_TIMEOUT_S = 300.0


def _child(channel: Connection, barrier: Any, workload: str, arguments: tuple,
           consumer_config: dict[str, str]) -> None:
    clients.CONSUMER_CONFIG.update(consumer_config)
    try:
        barrier.wait(PROCESS_TIMEOUT_S)
        started = time.monotonic()
        timed = getattr(clients, workload)(*arguments)
        channel.send(("done", started, time.monotonic(), timed.records))
    except BaseException as error:  # reported to the harness, which fails the figure
        channel.send(("error", f"{type(error).__name__}: {error}"))
        raise
    finally:
        channel.close()


def _run(workload: str, parts: list[tuple]) -> clients.Timed:
    """Run ``clients.<workload>(*part)`` in one process per part, all at once."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(parts))
    channels, children = [], []
    for number, arguments in enumerate(parts):
        receiving, sending = context.Pipe(duplex=False)
        child = context.Process(target=_child, name=f"kafka-bench-{workload}-{number}",
                                args=(sending, barrier, workload, arguments,
                                      dict(clients.CONSUMER_CONFIG)), daemon=True)
        child.start()
        sending.close()
        channels.append(receiving)
        children.append(child)
    try:
        results = []
        for channel in channels:
            if not channel.poll(PROCESS_TIMEOUT_S):
                raise clients.WorkloadError(f"{workload}: a client process did not finish")
            results.append(channel.recv())
        errors = [result[1] for result in results if result[0] == "error"]
        if errors:
            raise clients.WorkloadError(f"{workload}: {errors[0]}")
        started = min(result[1] for result in results)
        ended = max(result[2] for result in results)
        return clients.Timed(sum(result[3] for result in results), ended - started)
    finally:
        for child in children:
            child.join(5)
            if child.is_alive():
                child.kill()


def produce(bootstrap: str, topic: str, partitions: int, count: int, size: int,
            processes: int) -> clients.Timed:
    """``count`` records produced by ``processes`` client processes together."""
    shares = [count // processes + (1 if n < count % processes else 0)
              for n in range(processes)]
    return _run("produce", [(bootstrap, topic, partitions, share, size) for share in shares])


def consume(bootstrap: str, topic: str, partitions: int, count: int,
            processes: int) -> clients.Timed:
    """Every one of ``processes`` client processes reads the ``count`` records."""
    return _run("consume", [(bootstrap, topic, partitions, count)] * processes)
