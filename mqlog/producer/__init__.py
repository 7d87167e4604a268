"""Writing side: the Producer, partitioned and batched sends on top of the engine.

The clients layer: it uses the storage engine (``mqlog.logstore.Engine``) and
nothing private of it. Everything above (the ``Log`` session, the CLI,
servers) uses the names exported here; the ``_`` modules are private:

- ``_config``: :class:`ProducerConfig`, the settings;
- ``_partitioning``: which partition a record goes to (:func:`key_partition`,
  a custom ``Partitioner``, the sticky partitioner of keyless records);
- ``_batches``: the records queued per partition (:class:`Batch`, what
  ``Delivery.batch`` and a sender's ``batch_listener`` see) and the results
  of sends (:class:`Delivery`, :class:`BatchDelivery`, :class:`RecordMetadata`);
- ``_records`` and ``_timing``: checks and conversions of what ``send`` is
  given, and the headers of delayed and expiring records;
- ``_producer``: :class:`Producer`, the batches being filled; ``_sender``: its
  sender thread and idempotent retries.
"""

from mqlog.producer._batches import Batch, BatchDelivery, Delivery, RecordMetadata
from mqlog.producer._config import ProducerConfig
from mqlog.producer._partitioning import Partitioner, key_partition
from mqlog.producer._producer import SEND_BLOCK_S, TOPIC_RECHECK_S, Producer
from mqlog.producer._timing import SECONDS_MAX

__all__ = [
    "SECONDS_MAX",
    "SEND_BLOCK_S",
    "TOPIC_RECHECK_S",
    "Batch",
    "BatchDelivery",
    "Delivery",
    "Partitioner",
    "Producer",
    "ProducerConfig",
    "RecordMetadata",
    "key_partition",
]
