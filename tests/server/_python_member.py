"""A kafka-python or aiokafka consumer group member in a process of its own, for
the rebalance tests (a test kills it with ``kill -9`` or stops it with SIGTERM).

    python -m tests.server._python_member CLIENT BROKER GROUP TOPIC CLIENT_ID ASSIGNOR

CLIENT is ``kafka-python`` or ``aiokafka``; ASSIGNOR one of :data:`ASSIGNORS`.
The member subscribes to TOPIC from the earliest offset, prints one JSON line
``{"partition", "offset", "value"}`` per record (flushed at once) and commits
after each batch; a commit refused by a rebalance is skipped (the next batch's
commit covers it). SIGTERM makes it close the consumer, so that it leaves the
group, and exit 0. Its session timeout is short (:data:`SESSION_TIMEOUT_MS`),
so that a killed member is removed quickly.

(kafka-python's poll() joins a group synchronously: two of its consumers
polled from one thread wait on each other's join, hence one process each.)
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
from typing import Any

SESSION_TIMEOUT_MS = 3000
STATIC_SESSION_TIMEOUT_MS = 60_000
HEARTBEAT_INTERVAL_MS = 300
ASSIGNORS = ("range", "roundrobin", "sticky", "cooperative-sticky")


def _print(partition: int, offset: int, value: bytes | None) -> None:
    line = {"partition": partition, "offset": offset,
            "value": None if value is None else value.decode()}
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def kafka_python_member(broker: str, group: str, topic: str, client_id: str,
                        assignor: str, instance_id: str | None = None) -> None:
    from kafka import KafkaConsumer
    from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
    from kafka.errors import CommitFailedError, RebalanceInProgressError

    chosen: Any = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor,
                   "sticky": StickyPartitionAssignor,
                   "cooperative-sticky": CooperativeStickyAssignor}[assignor]
    consumer = KafkaConsumer(topic, bootstrap_servers=broker, group_id=group,
                             client_id=client_id, enable_auto_commit=False,
                             auto_offset_reset="earliest", group_instance_id=instance_id,
                             session_timeout_ms=session_timeout_ms(instance_id),
                             heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
                             partition_assignment_strategy=[chosen])
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        while not stopping.is_set():
            batches = consumer.poll(timeout_ms=100)
            for messages in batches.values():
                for message in messages:
                    _print(message.partition, message.offset, message.value)
            if batches:
                try:
                    consumer.commit()
                except (CommitFailedError, RebalanceInProgressError):
                    pass
    finally:
        consumer.close()


async def aiokafka_member(broker: str, group: str, topic: str, client_id: str,
                          assignor: str, instance_id: str | None = None) -> None:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
    from aiokafka.errors import CommitFailedError, RebalanceInProgressError

    chosen: Any = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor,
                   "sticky": StickyPartitionAssignor}[assignor]
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker, group_id=group,
                                client_id=client_id, enable_auto_commit=False,
                                auto_offset_reset="earliest", group_instance_id=instance_id,
                                session_timeout_ms=session_timeout_ms(instance_id),
                                heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
                                partition_assignment_strategy=(chosen,))
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    await consumer.start()
    try:
        while not stopping.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            for messages in batches.values():
                for message in messages:
                    _print(message.partition, message.offset, message.value)
            if batches:
                try:
                    await consumer.commit()
                except (CommitFailedError, RebalanceInProgressError):
                    pass
    finally:
        await consumer.stop()


def session_timeout_ms(instance_id: str | None) -> int:
    """A static member's session outlasts a restart (its point); a dynamic one's
    is short, so that a killed member is noticed quickly."""
    return STATIC_SESSION_TIMEOUT_MS if instance_id else SESSION_TIMEOUT_MS


def main(arguments: list[str]) -> None:
    client, broker, group, topic, client_id, assignor, *static = arguments
    instance_id = static[0] if static else None
    if client == "kafka-python":
        kafka_python_member(broker, group, topic, client_id, assignor, instance_id)
    elif client == "aiokafka":
        asyncio.run(aiokafka_member(broker, group, topic, client_id, assignor, instance_id))
    else:
        raise SystemExit(f"unknown client {client!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
