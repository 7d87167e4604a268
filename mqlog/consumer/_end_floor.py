"""The end floor of a log (``Engine.set_end_floor``): the lowest end offset a
partition may have, so that no group's progress points beyond its records.

Two kinds of group keep progress by offset: consumer groups (their committed
offsets, ``_offsets.committed_end_floor``) and queue groups (each share
state's ``window_end``: every offset below it was taken into the queue's
window, and the queue reads on from there). A partition whose end is below
either -- records lost by a power loss under relaxed durability, or a topic
deleted and created again under the same name -- is lifted to it when a
process opens it, so that new records get new offsets the groups will read,
not offsets they already passed.

Costs, per partition opened: the committed offsets' lookup, and one
``listdir`` of ``<log>/queues`` plus one 64-byte read per queue group that
has a share state of the partition.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from mqlog.consumer._config import TopicPartition
from mqlog.consumer._group import QUEUES_DIR
from mqlog.consumer._offsets import committed_end_floor
from mqlog.consumer._queue_files import share_state_path
from mqlog.consumer._share_state import window_end_of
from mqlog.logstore import Engine


def queue_windows_end_floor(engine: Engine) -> Callable[[str, int], int | None]:
    """The end floor that queue groups' share states set: the highest
    ``window_end`` of any queue group's state of the partition (None: none)."""
    queues = os.path.join(engine.path, QUEUES_DIR)

    def floor(topic: str, partition: int) -> int | None:
        try:
            groups = os.listdir(queues)
        except FileNotFoundError:
            return None
        ends = (window_end_of(share_state_path(os.path.join(queues, group),
                                               TopicPartition(topic, partition)))
                for group in groups)
        return max((end for end in ends if end is not None), default=None)

    return floor


def consumed_end_floor(engine: Engine) -> Callable[[str, int], int | None]:
    """The log's end floor: the highest of the committed offsets' and the queue
    windows' floors."""
    committed = committed_end_floor(engine)
    queued = queue_windows_end_floor(engine)

    def floor(topic: str, partition: int) -> int | None:
        floors = [found for found in (committed(topic, partition), queued(topic, partition))
                  if found is not None]
        return max(floors, default=None)

    return floor
