"""Dead-lettering from a worker: moving records a queue group gives up on to the
dead-letter topic, and the nack reasons they carry there (rule 4 of ``_queue``).

Owner: the nack-reasons file of each partition of a queue group
(``<topic>/<partition>.reasons``, see ``_queue_files``): the last reason given
to ``nack`` for each unfinished record, replaced atomically under the
partition's share-state lock and as durably as the share state. Reasons of
records below the group's position are dropped at the next write.

Invariants:
- The dead-letter topic (``dead_letter_topic``, else ``<topic>.dlq``) is
  created on first use with the source topic's partition count and
  durability; a record goes to the partition of the same number (modulo its
  partition count).
- A dead letter keeps its key, value, headers and timestamp and gains the
  ``dlq.*`` headers; the records are appended before their share-state
  entries are archived (at-least-once: a worker killed in between leaves a
  duplicate, never a loss).

Listing, redriving and purging dead letters is ``_dead_letters``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from mqlog.consumer._config import TopicPartition
from mqlog.consumer._queue_files import reasons_path
from mqlog.consumer._share_state import ARCHIVED, ShareState
from mqlog.errors import TopicExistsError
from mqlog.headers import (
    DEAD_LETTER_DELIVERY_COUNT,
    DEAD_LETTER_FIRST_DELIVERY_MS,
    DEAD_LETTER_LAST_DELIVERY_MS,
    DEAD_LETTER_OFFSET,
    DEAD_LETTER_PARTITION,
    DEAD_LETTER_REASON,
    DEAD_LETTER_TOPIC,
)
from mqlog.logstore import Record, atomic_write

if TYPE_CHECKING:
    from mqlog.consumer._queue import QueueConsumer, QueueMessage

#: The dead-letter topic of ``<topic>`` when the worker names none.
DLQ_SUFFIX = ".dlq"


def remember_reason(worker: QueueConsumer, tp: TopicPartition, offset: int,
                    reason: str) -> None:
    """Keep ``reason`` as the last nack reason of the record at ``offset``."""
    state = worker.share_state(tp)
    with state.locked():
        write_reason(worker.directory, tp, state, offset, reason)


def write_reason(directory: str, tp: TopicPartition, state: ShareState, offset: int,
                 reason: str) -> None:
    """Keep ``reason`` as the last nack reason of the record at ``offset`` of the
    queue group at ``directory``; the caller holds ``state``'s lock."""
    start = state.bounds()[0]
    reasons = {k: v for k, v in load_reasons(directory, tp).items() if k >= start}
    reasons[offset] = str(reason)
    document = json.dumps({str(k): v for k, v in reasons.items()}).encode()
    # As durable as the state.
    atomic_write(reasons_path(directory, tp), document, durable=state.durable)


def load_reasons(directory: str, tp: TopicPartition) -> dict[int, str]:
    """The last nack reasons of ``tp``'s unfinished records, by offset ({} when
    there are none or the file cannot be read)."""
    try:
        with open(reasons_path(directory, tp)) as handle:
            return {int(k): v for k, v in json.load(handle).items()}
    except (FileNotFoundError, ValueError):
        return {}


def dead_letter(worker: QueueConsumer, tp: TopicPartition, state: ShareState,
                items: list[tuple[QueueMessage, int, int, int]], now: int,
                reason: str | None = None) -> None:
    """Append ``items`` (record, deliveries, first and last delivery ms) acquired
    by ``worker`` in ``tp`` to the dead-letter topic, then archive them. With no
    ``reason`` (the last nack's reason is used) they count as dead-lettered;
    with one (``"expired"``) the caller counts them."""
    engine = worker.engine
    target = worker.dead_letter_topic_for(tp.topic)
    config = engine.topic_config(tp.topic)
    try:  # as durable as the topic the records come from
        engine.create_topic(target, engine.partition_count(tp.topic),
                            durability=config.durability, flush_ms=config.flush_ms)
    except TopicExistsError:
        pass
    reasons = load_reasons(worker.directory, tp)
    records = []
    for record, deliveries, first, last in items:
        headers = dict(record.headers)
        headers.update({
            DEAD_LETTER_TOPIC: tp.topic.encode(),
            DEAD_LETTER_PARTITION: str(tp.partition).encode(),
            DEAD_LETTER_OFFSET: str(record.offset).encode(),
            DEAD_LETTER_DELIVERY_COUNT: str(deliveries - 1).encode(),
            DEAD_LETTER_REASON: (reason or reasons.get(record.offset, "")).encode(),
            DEAD_LETTER_FIRST_DELIVERY_MS: str(first).encode(),
            DEAD_LETTER_LAST_DELIVERY_MS: str(last).encode(),
        })
        records.append(Record(record.value, record.key, headers, record.timestamp))
    partitions = engine.partition_count(target)
    engine.append(target, tp.partition % partitions, records)
    state.finish(worker.member_id, [item[0].offset for item in items], ARCHIVED)
    if reason is None:
        state.count("dead_lettered", len(items))
