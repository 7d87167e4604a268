"""Produce (API key 0): Kafka record batches appended as sent.

Each partition's records go to :meth:`Engine.append_kafka_batches` in a worker
thread (an append under ``durability="always"`` waits for its flush, and
concurrent requests share flushes through the engine's group commit), so the
event loop keeps serving other requests meanwhile. ``acks`` does not change
durability: a topic's durability class decides when an append is flushed
(acks=all on a single broker means "written to the log"). With acks=0 the
runtime sends no response; the records are appended all the same.
Transactional produces are refused: the server has no transactions.
"""

from __future__ import annotations

import asyncio
import logging

from kio.schema.errors import ErrorCode

from mqlog.errors import MqlogError
from mqlog.server.kafka._codec import NO_THROTTLE, Entity, Request, build, part, response_type
from mqlog.server.kafka._context import ServerState
from mqlog.server.kafka._errors import error_code

API_KEY = 0
MIN_VERSION = 3
MAX_VERSION = 12

log = logging.getLogger("mqlog.server.kafka")


async def handle(server: ServerState, request: Request) -> Entity:
    """Append every partition's batches; one result per partition."""
    body = request.body
    transactional = getattr(body, "transactional_id", None) is not None
    work = [(topic.name, data.index, data.records)
            for topic in body.topic_data for data in topic.partition_data]
    results = await asyncio.to_thread(_append_all, server, work, transactional)
    response = response_type(request.api_key, request.api_version)
    topic_type = part(response, "TopicProduceResponse")
    partition_type = part(response, "PartitionProduceResponse")
    by_topic: dict[str, list] = {}
    for (topic, partition, _records), (code, base_offset, start, message) in zip(work, results):
        by_topic.setdefault(topic, []).append(build(
            partition_type, index=partition, error_code=code, base_offset=base_offset,
            log_append_time=None, log_start_offset=start, record_errors=(),
            error_message=message))
    return build(response, responses=tuple(
        build(topic_type, name=name, partition_responses=tuple(partitions))
        for name, partitions in by_topic.items()), throttle_time=NO_THROTTLE)


def _append_all(server: ServerState, work: list, transactional: bool
                ) -> list[tuple[ErrorCode, int, int, str | None]]:
    engine = server.engine
    results: list[tuple[ErrorCode, int, int, str | None]] = []
    for topic, partition, records in work:
        if transactional:
            results.append((ErrorCode.transactional_id_authorization_failed, -1, -1,
                            "transactions are not supported"))
            continue
        if records is None:
            results.append((ErrorCode.invalid_record, -1, -1, "no records"))
            continue
        try:
            base_offset = engine.append_kafka_batches(topic, partition, records)
            start = engine.start_offset(topic, partition)
        except MqlogError as error:
            code = error_code(error)
            if code == ErrorCode.unknown_server_error:
                log.warning("produce to %s/%d failed: %s", topic, partition, error)
            results.append((code, -1, -1, str(error)))
        else:
            results.append((ErrorCode.none, base_offset, start, None))
    return results
