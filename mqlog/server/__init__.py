"""``mqlog serve``: network doors to a log directory.

The server is one asyncio process over a log directory that embedded
processes keep using at the same time. It is a client of the storage engine
(:class:`mqlog.logstore.Engine`) and of the consumer-group membership
(:class:`mqlog.consumer.GroupMembership`), like any other client: it reaches
nothing private below it.

``mqlog.server.kafka`` speaks the Kafka wire protocol: :class:`KafkaServer`
(an asyncio server over an open log's engine) and :func:`run_server` (open a
directory and serve it until SIGTERM or Ctrl-C), bounded by
:class:`KafkaLimits` and configured by :class:`KafkaSettings`.
"""

from mqlog.server.kafka import KafkaLimits, KafkaServer, KafkaSettings, run_server

__all__ = ["KafkaLimits", "KafkaServer", "KafkaSettings", "run_server"]
