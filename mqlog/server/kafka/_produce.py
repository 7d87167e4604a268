"""Produce (API key 0): Kafka record batches appended as sent.

The handler is a plain function, run by the connection as soon as the
requests before it are done: each partition's records go to
:meth:`Engine.append_kafka_batches` on the event loop, without a flush (an
append is a header parse, a CRC check and one ``pwritev``), so pipelined
produces of a connection append in request order. Partitions of topics
with ``durability="always"`` are then flushed in a worker thread
(``mqlog.logstore.flush_cycles``: one flush cycle at a time for every
partition waited on, shared by every request it covers) while the handler
answers ``Later(..., waiting=True)``: the connection reads and appends the
requests behind it meanwhile (up to ``max_waiting_per_connection`` of them
wait, holding only their results),
so a producer with many requests in flight pays about one flush per group
of them, not one each. The response (in request order) goes out once the
flush is done; a failed flush answers KAFKA_STORAGE_ERROR for the
partitions it covered.

``acks`` does not change durability: a topic's durability class decides when
an append is on disk (acks=all on a single broker means "appended"). With
acks=0 the runtime sends no response; the records are appended all the same.
Transactional produces are refused: the server has no transactions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging

from kio.schema.errors import ErrorCode

from mqlog.errors import MqlogError
from mqlog.logstore import append_watch, flush_cycles
from mqlog.server.kafka._codec import Request
from mqlog.server.kafka._context import Later, ServerState
from mqlog.server.kafka._errors import error_code
from mqlog.server.kafka._hot_responses import ProducedPartition, produce_response
from mqlog.server.kafka._request_metrics import note_frame_errors

API_KEY = 0
MIN_VERSION = 3
MAX_VERSION = 12

log = logging.getLogger("mqlog.server.kafka")


@dataclasses.dataclass
class _Result:
    """One partition's outcome; ``sync_to``: the end offset to flush up to
    (durability "always"), else None."""

    topic: str
    partition: int
    code: ErrorCode = ErrorCode.none
    base_offset: int = -1
    log_start_offset: int = -1
    message: str | None = None
    sync_to: int | None = None


def handle(server: ServerState, request: Request) -> bytes | Later:
    """Append every partition's batches now; answer once the durable ones are flushed."""
    body = request.body
    transactional = getattr(body, "transactional_id", None) is not None
    results = [_append(server, topic.name, data.index, data.records, transactional)
               for topic in body.topic_data for data in topic.partition_data]
    append_watch(server.engine).poke()  # fetches waiting here see the records now
    version, correlation_id = request.api_version, request.correlation_id
    durable = [result for result in results
               if result.sync_to is not None and result.code == ErrorCode.none]
    if not durable:
        return _response(version, correlation_id, results)
    answer = _AfterFlushes(version, correlation_id, results)
    cycles = flush_cycles(server.engine)
    for result in durable:
        assert result.sync_to is not None
        answer.wait_for(cycles.durable(result.topic, result.partition, result.sync_to), result)
    return Later(answer.future, waiting=True)


class _AfterFlushes:
    """The response of a produce once the flushes of its durable partitions
    ended, in ``future``; a flush that failed (an MqlogError) answers its
    partition's error, any other exception fails the answer. Holds the
    results, not the request."""

    def __init__(self, version: int, correlation_id: int, results: list[_Result]) -> None:
        self.future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._version = version
        self._correlation_id = correlation_id
        self._results = results
        self._pending = 0

    def wait_for(self, flush: asyncio.Future[None], result: _Result) -> None:
        self._pending += 1
        flush.add_done_callback(functools.partial(self._flushed, result))

    def _flushed(self, result: _Result, flush: asyncio.Future[None]) -> None:
        if flush.cancelled():
            self.future.cancel()
            return
        error = flush.exception()  # retrieved even when the answer is no longer wanted
        if self.future.done():
            return  # cancelled, or failed by another flush: its connection is closing
        if isinstance(error, MqlogError):
            _failed(result, error)
        elif error is not None:
            self.future.set_exception(error)
            return
        self._pending -= 1
        if not self._pending:
            self.future.set_result(_response(self._version, self._correlation_id,
                                             self._results))


def _append(server: ServerState, topic: str, partition: int, records: bytes | None,
            transactional: bool) -> _Result:
    result = _Result(topic, partition)
    if transactional:
        result.code, result.message = (ErrorCode.transactional_id_authorization_failed,
                                       "transactions are not supported")
        return result
    if records is None:
        result.code, result.message = ErrorCode.invalid_record, "no records"
        return result
    engine = server.engine
    try:
        result.base_offset = engine.append_kafka_batches(topic, partition, records,
                                                         flush=False)
        result.log_start_offset = engine.start_offset(topic, partition)
        if engine.topic_config(topic).durability == "always":
            result.sync_to = engine.end_offset(topic, partition)
    except MqlogError as error:
        _failed(result, error)
    return result


def _failed(result: _Result, error: MqlogError) -> None:
    result.code = error_code(error)
    result.base_offset = result.log_start_offset = -1
    result.message = str(error)
    if result.code == ErrorCode.unknown_server_error:
        log.warning("produce to %s/%d failed: %s", result.topic, result.partition, error)


def _response(version: int, correlation_id: int, results: list[_Result]) -> bytes:
    note_frame_errors(result.code.value for result in results)
    by_topic: dict[str, list[ProducedPartition]] = {}
    for result in results:
        by_topic.setdefault(result.topic, []).append(ProducedPartition(
            result.partition, result.code.value, result.base_offset, result.log_start_offset,
            result.message))
    return produce_response(version, correlation_id, list(by_topic.items()))
