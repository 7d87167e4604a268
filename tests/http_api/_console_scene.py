"""A log with something in every view of the web console, made with the library.

- topic ``orders`` (2 partitions): records 0-9, JSON values, keys ``k0``..``k9``
  and a ``trace`` header, even numbers in partition 0, odd ones in 1;
- consumer group ``billing``: committed 3 in partition 0 and 2 in partition 1
  (lag 2 and 3);
- queue group ``workers`` (``max_deliveries=1``): record 0 of partition 0 nacked
  with reason ``bad payload`` (so dead-lettered to ``orders.dlq``), record 1 of
  partition 0 acknowledged, the others released when the worker closed; then
  two of them held by receipts (in flight for an hour).

The browser tests compare the page with the library over this log, and
``console_screenshot`` photographs it.
"""

from __future__ import annotations

import os

import mqlog
from mqlog import TopicPartition

TOPIC = "orders"
DLQ = "orders.dlq"
CONSUMER_GROUP = "billing"
QUEUE_GROUP = "workers"
DEAD_REASON = "bad payload"
RECORDS = 10


def value_of(number: int) -> bytes:
    return b'{"order": %d, "amount": %d}' % (number, 10 * number + 5)


def fill(directory: str | os.PathLike[str]) -> None:
    """Make the scene the module docstring describes in the log at ``directory``."""
    with mqlog.open(directory) as log:
        log.create_topic(TOPIC, 2)
        for number in range(RECORDS):
            log.append(TOPIC, number % 2, [mqlog.Record(
                value_of(number), key=b"k%d" % number, headers={"trace": b"t-%d" % number})])
        log.alter_offsets(CONSUMER_GROUP, {TopicPartition(TOPIC, 0): 3,
                                           TopicPartition(TOPIC, 1): 2})
        with log.queue(QUEUE_GROUP, TOPIC, max_deliveries=1) as worker:
            messages = {(m.partition, m.offset): m for m in worker.receive(max_messages=RECORDS)}
            messages[0, 0].nack(delay_s=0, reason=DEAD_REASON)
            messages[0, 1].ack()
            assert worker.receive(max_messages=RECORDS) == []  # moves 0@0 to orders.dlq
        log.receive_with_receipts(QUEUE_GROUP, TOPIC, max_messages=2, visibility_s=3600)
