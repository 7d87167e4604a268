"""Where a queue group keeps its files, and how durably.

Owns no state: it names the files under a queue group's directory
(``<log>/queues/<group>/``, see ``_group.queue_directory``), which every
module of queue groups reads or writes through these helpers:

- ``members/<id>.json``: a live worker's member file, ``flock``-ed while it
  lives (JSON: pid, host);
- ``<topic>/<partition>``: the partition's share state (``_share_state``),
  a window of ``WINDOW_RECORDS`` entries;
- ``<topic>/<partition>.reasons``: the last nack reason of each unfinished
  record (JSON), as durable as the share state.

Invariant: a share state is flushed on every change exactly when its topic's
records are (durability "always").
"""

from __future__ import annotations

import os

from mqlog.consumer._config import TopicPartition
from mqlog.logstore import Partition

#: Records one worker may hold per partition at once (the share window).
WINDOW_RECORDS = 65_536


def member_path(directory: str, member: int) -> str:
    """The file a worker holds an ``flock`` on while it lives (JSON: pid, host)."""
    return os.path.join(directory, "members", f"{member}.json")


def share_state_path(directory: str, tp: TopicPartition) -> str:
    """The share-state file of one partition of the queue group at ``directory``."""
    return os.path.join(directory, tp.topic, str(tp.partition))


def reasons_path(directory: str, tp: TopicPartition) -> str:
    """The last nack reasons of one partition's unfinished records (JSON)."""
    return share_state_path(directory, tp) + ".reasons"


def state_is_durable(partition: Partition) -> bool:
    """Whether a queue's share state of ``partition`` is flushed on every change:
    when the topic's records are (durability "always")."""
    return partition.config().durability == "always"
