"""Figure 6: Producer throughput, one record per ``send`` and 10,000 per ``send_many``.

Workload: a log with one topic of one partition, durability="none", default
segment size. One thread creates a Producer with the default settings
(``linger_ms=0``: the sender thread appends whatever has queued up each time it
runs) and sends ``--records`` records (default 1,000,000) of 100 random bytes:

* send: one ``Producer.send(topic, value)`` per record, keyless (the sticky
  partitioner; the topic has one partition);
* send_many: ``Producer.send_many(topic, values)`` with 10,000 values per call.

The values (10,000 distinct ones, reused in turn) are built before timing; the
producer is created and the partition opened before the clock starts. Timed:
from the first call to ``Producer.flush()`` returning, i.e. until every
delivery is complete (appended to the log), so records merely queued in the
producer do not count. Each run uses a fresh log directory; the median of
``--repeat`` runs (default 3) is reported.

Figures: send records/s (target >= 500,000), send_many records/s (target >=
2,000,000).
"""

from __future__ import annotations

from collections.abc import Callable

import _common

import mqlog
from mqlog import Producer

BENCH = "producer_send"
BATCH = 10_000
TARGET_SEND_PER_S = 500_000
TARGET_SEND_MANY_PER_S = 2_000_000


def send_each(producer: Producer, values: list[bytes], records: int) -> None:
    """One ``send`` per record, cycling through ``values``."""
    send, topic, count = producer.send, _common.TOPIC, len(values)
    for number in range(records):
        send(topic, values[number % count])


def send_batches(producer: Producer, values: list[bytes], records: int) -> None:
    """``send_many`` of ``len(values)`` records per call (the rest in a last call)."""
    calls, rest = divmod(records, len(values))
    for _ in range(calls):
        producer.send_many(_common.TOPIC, values)
    if rest:
        producer.send_many(_common.TOPIC, values[:rest])


def run_once(records: int, sending: Callable[[Producer, list[bytes], int], None]) -> float:
    """Seconds from the first send to ``flush`` returning, in a fresh log."""
    values = _common.payloads(BATCH)
    with _common.temporary_log_dir(BENCH) as path, mqlog.open(path) as log:
        log.create_topic(_common.TOPIC, durability="none")
        log.end_offset(_common.TOPIC, 0)  # open the partition outside the timing
        with log.producer() as producer, _common.stopwatch() as elapsed:
            sending(producer, values, records)
            unwritten = producer.flush()
        assert unwritten == 0, f"{unwritten} records not written"
        assert log.end_offset(_common.TOPIC, 0) == records
    return elapsed[0]


def main() -> None:
    args = _common.arguments(__doc__, records=[1_000_000], quick=[20_000], repeat=3)
    shared = {"records": args.records, "durability": "none",
              "value_bytes": _common.VALUE_BYTES, "repeat": args.repeat}
    send_s = [run_once(args.records, send_each) for _ in range(args.repeat)]
    _common.emit(BENCH, "send_records_per_s", args.records / _common.median(send_s),
                 "records/s", target_min=TARGET_SEND_PER_S, per_call=1, **shared)
    many_s = [run_once(args.records, send_batches) for _ in range(args.repeat)]
    _common.emit(BENCH, "send_many_records_per_s", args.records / _common.median(many_s),
                 "records/s", target_min=TARGET_SEND_MANY_PER_S, per_call=BATCH, **shared)


if __name__ == "__main__":
    main()
