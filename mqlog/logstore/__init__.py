"""The storage engine: topics, partitions, segments and indexes on disk.

Everything above storage (clients, the ``Log`` session, the CLI, servers) uses
the names exported here and nothing else of this package; a test checks that
no module outside it imports a ``_``-prefixed module or name from it.
Besides the engine, it lends the layers that keep files of their own (group
membership, queue share state) its file primitives: ``atomic_write``, the sync
seam (``fsync_file``, ``fsync_directory``, ``sync_map``: every sync of mqlog
goes through them) and block reservation (``reserve``, ``storage_failed``).
"""

from mqlog.logstore._append_watch import AppendWatch, append_watch
from mqlog.logstore._columns import RecordColumns, columns_of_records
from mqlog.logstore._counters import FLUSH_BUCKETS_S, CountersSnapshot, EngineCounters
from mqlog.logstore._files import atomic_write, fsync_directory, fsync_file, sync_map
from mqlog.logstore._flush_cycles import FlushCycles, flush_cycles
from mqlog.logstore._partition import Partition
from mqlog.logstore._producers import EPOCH_MAX, SEQUENCE_MAX, ProducerBatch
from mqlog.logstore._record import Message, Record
from mqlog.logstore._space import reserve, storage_failed
from mqlog.logstore._state import PartitionState
from mqlog.logstore._views import PartitionDescription
from mqlog.logstore.config import TopicConfig
from mqlog.logstore.engine import (
    EndFloor,
    Engine,
    TopicDescription,
    check_new_topic,
    checked_timestamp,
)

__all__ = [
    "EPOCH_MAX",
    "FLUSH_BUCKETS_S",
    "SEQUENCE_MAX",
    "AppendWatch",
    "CountersSnapshot",
    "EndFloor",
    "Engine",
    "EngineCounters",
    "FlushCycles",
    "Message",
    "Partition",
    "PartitionDescription",
    "PartitionState",
    "ProducerBatch",
    "Record",
    "RecordColumns",
    "TopicConfig",
    "TopicDescription",
    "append_watch",
    "atomic_write",
    "check_new_topic",
    "checked_timestamp",
    "columns_of_records",
    "flush_cycles",
    "fsync_directory",
    "fsync_file",
    "reserve",
    "storage_failed",
    "sync_map",
]
