"""The child processes of ``mqlog demo``: order producers and group workers.

Run as ``python -m mqlog.cli._demo_proc ROLE ARGS...``; each opens the log
itself, as separate services would.

``producer LOG INDEX COUNT SECONDS``
    Sends COUNT orders, spread evenly over SECONDS, keyed by customer (so all
    orders of a customer land in one partition, in order), waits until every
    one is written and prints ``acked N failed M from T1 to T2`` (T: the wall
    clock, in seconds, when it started sending and when all were written).
``worker LOG NAME LEDGER STOP WORK_US``
    Joins the demo group as client NAME and, until the file STOP exists, polls
    and processes each batch of orders: the effect of processing is one line
    ``PARTITION OFFSET`` per order appended to its LEDGER file, and the work
    takes WORK_US microseconds per order; only then it commits: at-least-once.
    The parent kills one worker with SIGKILL; whatever it had processed but not
    committed is processed again by the worker that takes its partition over.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time

import mqlog
from mqlog.errors import CommitFailedError

TOPIC = "orders"
GROUP = "order-workers"
CUSTOMERS = 500
#: Most orders a worker processes per poll.
WORKER_BATCH = 100
#: A worker's longest wait in poll: bounds how late it sees the stop file.
WORKER_POLL_S = 0.1
#: Pause of a producer that is ahead of its schedule.
PRODUCER_STEP_S = 0.005


def order(index: int, number: int, rng: random.Random) -> tuple[bytes, bytes]:
    """(key, value) of order ``number`` of producer ``index``."""
    customer = f"customer-{rng.randrange(CUSTOMERS):03d}"
    value = {"order": f"p{index}-{number:06d}", "customer": customer,
             "amount": round(rng.uniform(5, 500), 2)}
    return customer.encode(), json.dumps(value, separators=(",", ":")).encode()


def produce(path: str, index: int, count: int, seconds: float) -> None:
    """Send ``count`` orders over ``seconds``; print how many were written."""
    rng = random.Random(index)
    failed = 0
    with mqlog.open(path) as log, log.producer() as producer:
        deliveries = []
        began = time.time()
        started = time.monotonic()
        for number in range(count):
            due = started + seconds * number / count
            if due > time.monotonic() + PRODUCER_STEP_S:
                time.sleep(due - time.monotonic())
            key, value = order(index, number, rng)
            deliveries.append(producer.send(TOPIC, value, key=key))
        producer.flush()
        for delivery in deliveries:
            try:
                delivery.result(timeout=30)
            except (mqlog.MqlogError, TimeoutError):
                failed += 1
    print(f"acked {count - failed} failed {failed} from {began:.3f} to {time.time():.3f}",
          flush=True)


def work(path: str, name: str, ledger: str, stop: str, work_us: int) -> None:
    """Consume as a member of the group until ``stop`` exists (see the module docstring)."""
    fd = os.open(ledger, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    with mqlog.open(path) as log, log.consumer(
        GROUP, [TOPIC], client_id=name, auto_offset_reset="earliest",
        max_poll_records=WORKER_BATCH,
    ) as consumer:
        while not os.path.exists(stop):
            messages = consumer.poll(timeout=WORKER_POLL_S)
            if not messages:
                continue
            os.write(fd, "".join(f"{m.partition} {m.offset}\n" for m in messages).encode())
            time.sleep(len(messages) * work_us / 1e6)
            try:
                consumer.commit()
            except CommitFailedError:
                pass  # the partition moved on: its new owner processes these again
    os.close(fd)


if __name__ == "__main__":
    role, arguments = sys.argv[1], sys.argv[2:]
    if role == "producer":
        produce(arguments[0], int(arguments[1]), int(arguments[2]), float(arguments[3]))
    elif role == "worker":
        work(arguments[0], arguments[1], arguments[2], arguments[3], int(arguments[4]))
    else:
        raise SystemExit(f"unknown role {role!r}")
