"""The log store: topics, partitions, segments and indexes on disk."""

from mqlog.logstore._columns import RecordColumns
from mqlog.logstore._log import Log, TopicDescription, open
from mqlog.logstore._partition import PartitionDescription
from mqlog.logstore._producers import ProducerBatch
from mqlog.logstore._record import Message, Record
from mqlog.logstore.config import TopicConfig

__all__ = [
    "Log",
    "Message",
    "PartitionDescription",
    "ProducerBatch",
    "Record",
    "RecordColumns",
    "TopicConfig",
    "TopicDescription",
    "open",
]
