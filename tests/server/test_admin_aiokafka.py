"""Topic administration and offsets through aiokafka (ApiVersions v0, older versions)."""

from __future__ import annotations

import asyncio

import pytest

import mqlog
from tests.server._serve import RunningServer

pytest.importorskip("aiokafka")
from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic  # noqa: E402
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType  # noqa: E402

T0 = 1_700_000_000_000


def test_aiokafka_admin_and_offsets(kafka_server: RunningServer) -> None:
    async def main() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_server.address)
        await admin.start()
        try:
            created = await admin.create_topics([NewTopic("ai", 2, 1, topic_configs={
                "retention.ms": "60000"})])
            assert [error[1] for error in created.topic_errors] == [0]
            assert "ai" in await admin.list_topics()
            (described,) = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, "ai")])
            values = {entry[0]: entry[1] for entry in described.resources[0][4]}
            assert values["retention.ms"] == "60000"
            grown = await admin.create_partitions({"ai": NewPartitions(3)})
            assert [error[1] for error in grown.topic_errors] == [0]
            with mqlog.open(kafka_server.directory) as log:
                assert len(log.describe_topic("ai").partitions) == 3
                log.append("ai", 0, [mqlog.Record(b"x", timestamp=T0 + n) for n in range(4)])
            consumer = AIOKafkaConsumer(bootstrap_servers=kafka_server.address)
            await consumer.start()
            try:
                tp = TopicPartition("ai", 0)
                assert await consumer.beginning_offsets([tp]) == {tp: 0}
                assert await consumer.end_offsets([tp]) == {tp: 4}
                found = await consumer.offsets_for_times({tp: T0 + 2})
                assert (found[tp].offset, found[tp].timestamp) == (2, T0 + 2)
            finally:
                await consumer.stop()
            deleted = await admin.delete_topics(["ai"])
            assert [error[1] for error in deleted.topic_error_codes] == [0]
        finally:
            await admin.close()

    asyncio.run(main())


def test_aiokafka_alters_configs_and_deletes_records(kafka_server: RunningServer) -> None:
    from aiokafka.admin.records_to_delete import RecordsToDelete

    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("ai-tuned", 1)
        log.append("ai-tuned", 0, [b"%d" % n for n in range(6)])

    async def main() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_server.address)
        await admin.start()
        try:
            (altered,) = await admin.alter_configs([ConfigResource(
                ConfigResourceType.TOPIC, "ai-tuned", {"retention.ms": "90000"})])
            assert [resource[0] for resource in altered.resources] == [0]
            tp = TopicPartition("ai-tuned", 0)
            assert await admin.delete_records({tp: RecordsToDelete(before_offset=4)}) == {tp: 4}
        finally:
            await admin.close()

    asyncio.run(main())
    with mqlog.open(kafka_server.directory) as log:
        assert log.describe_topic("ai-tuned").config.retention_ms == 90000
        assert log.start_offset("ai-tuned", 0) == 4
