"""The connection runtime in process, with handlers of the test's own:
acks=0, failing handlers, ordering, limits and the graceful shutdown."""

from __future__ import annotations

import asyncio
import datetime
import logging
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

import mqlog
from mqlog.server import KafkaLimits, KafkaServer
from mqlog.server.kafka._apis import ApiTable
from mqlog.server.kafka._codec import Entity, Request, build, response_type
from mqlog.server.kafka._context import Later, ServerState
from mqlog.server.kafka._handlers import default_table
from mqlog.server.kafka._lifecycle import on_shutdown, stopping
from tests.server._serve import decode_response, encode_request

PRODUCE, DESCRIBE_CONFIGS = 0, 32


def _produce(correlation_id: int, acks: int) -> bytes:
    return encode_request(PRODUCE, 9, correlation_id, transactional_id=None, acks=acks,
                          timeout=datetime.timedelta(seconds=5), topic_data=())


def _describe(correlation_id: int) -> bytes:
    return encode_request(DESCRIBE_CONFIGS, 4, correlation_id, resources=(),
                          include_synonyms=False, include_documentation=False)


async def _empty_produce(server: ServerState, request: Request) -> Entity:
    return build(response_type(PRODUCE, request.api_version), responses=(),
                 throttle_time=datetime.timedelta(0))


async def _empty_describe(server: ServerState, request: Request) -> Entity:
    return build(response_type(DESCRIBE_CONFIGS, request.api_version), results=(),
                 throttle_time=datetime.timedelta(0))


class Client:
    """A raw connection in the test's event loop."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, server: KafkaServer) -> Client:
        return cls(*await asyncio.open_connection(*server.address))

    async def send(self, *frames: bytes) -> None:
        self.writer.write(b"".join(frames))
        await self.writer.drain()

    async def correlation(self, api_key: int, version: int) -> int:
        """The correlation id of the next response (decoded as ``api_key`` v``version``)."""
        (size,) = struct.unpack(">i", await self.reader.readexactly(4))
        frame = await self.reader.readexactly(size)
        return decode_response(api_key, version, frame)[0]

    async def closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(1), 10) == b""

    def close(self) -> None:
        self.writer.close()


def _serve(directory: Path, table: ApiTable,
           body: Callable[[KafkaServer], Awaitable[None]], **limits: object) -> None:
    """Run ``body(server)`` against a started server over ``directory``, then close it."""
    async def main() -> None:
        with mqlog.open(directory) as log:
            server = KafkaServer(log.engine, port=0, table=table, limits=KafkaLimits(**limits))
            await server.start()
            try:
                await asyncio.wait_for(body(server), 30)
            finally:
                await server.close()
    asyncio.run(main())


def _table(*extra: tuple[int, int, int, Callable, bool]) -> ApiTable:
    """The default table with the APIs of ``extra`` registered in place of its own."""
    table = ApiTable()
    replaced = {key for key, *_ in extra}
    for api in default_table():
        if api.api_key not in replaced:
            table.register(api.api_key, api.min_version, api.max_version, api.handler,
                           concurrent=api.concurrent)
    for key, low, high, handler, concurrent in extra:
        table.register(key, low, high, handler, concurrent=concurrent)
    return table


def test_produce_with_acks_0_gets_no_response(log_dir: Path) -> None:
    calls: list[int] = []

    async def produce(server: ServerState, request: Request) -> Entity:
        calls.append(request.body.acks)
        return await _empty_produce(server, request)

    async def body(server: KafkaServer) -> None:
        client = await Client.open(server)
        await client.send(_produce(1, 0), _produce(2, 1), encode_request(18, 0, 3))
        assert await client.correlation(PRODUCE, 9) == 2  # 1 (acks=0) is not answered
        assert await client.correlation(18, 0) == 3
        client.close()

    _serve(log_dir, _table((PRODUCE, 3, 9, produce, False)), body)
    assert calls == [0, 1]


def test_a_failing_handler_closes_only_its_connection(log_dir: Path, caplog) -> None:
    async def fail(server: ServerState, request: Request) -> Entity:
        raise RuntimeError("a bug in a handler")

    async def body(server: KafkaServer) -> None:
        other, failing = await Client.open(server), await Client.open(server)
        await failing.send(_produce(1, 1))
        assert await failing.closed()
        await other.send(encode_request(18, 0, 2))
        assert await other.correlation(18, 0) == 2
        other.close()

    with caplog.at_level(logging.ERROR, logger="mqlog.server.kafka"):
        _serve(log_dir, _table((PRODUCE, 3, 9, fail, False)), body)
    (record,) = [r for r in caplog.records if r.exc_info]
    assert "a bug in a handler" in str(record.exc_info[1])
    assert "closing connection from 127.0.0.1:" in record.getMessage()


def test_responses_keep_request_order_and_exclusive_requests_run_alone(
        log_dir: Path) -> None:
    """Request 1 (concurrent) is slow, 2 (concurrent) fast: 2 finishes first but
    is answered second. Request 3 (not concurrent) starts only after both, and
    request 4 (concurrent) only after 3."""
    events: list[str] = []
    release_first = asyncio.Event()

    async def describe(server: ServerState, request: Request) -> Entity:
        events.append(f"start {request.correlation_id}")
        if request.correlation_id == 1:
            await release_first.wait()
        if request.correlation_id == 2:
            release_first.set()
        events.append(f"end {request.correlation_id}")
        return await _empty_describe(server, request)

    async def produce(server: ServerState, request: Request) -> Entity:
        events.append(f"start {request.correlation_id}")
        await asyncio.sleep(0)
        events.append(f"end {request.correlation_id}")
        return await _empty_produce(server, request)

    async def body(server: KafkaServer) -> None:
        client = await Client.open(server)
        await client.send(_describe(1), _describe(2), _produce(3, 1), _describe(4))
        answered = [await client.correlation(DESCRIBE_CONFIGS, 4),
                    await client.correlation(DESCRIBE_CONFIGS, 4),
                    await client.correlation(PRODUCE, 9),
                    await client.correlation(DESCRIBE_CONFIGS, 4)]
        assert answered == [1, 2, 3, 4]
        client.close()

    table = ApiTable()
    table.register(DESCRIBE_CONFIGS, 1, 4, describe, concurrent=True)
    table.register(PRODUCE, 3, 9, produce)
    _serve(log_dir, table, body)
    assert events == ["start 1", "start 2", "end 2", "end 1", "start 3", "end 3",
                      "start 4", "end 4"]


def test_in_flight_requests_per_connection_are_bounded(log_dir: Path) -> None:
    running = 0
    most = 0
    gate = asyncio.Event()

    async def describe(server: ServerState, request: Request) -> Entity:
        nonlocal running, most
        running += 1
        most = max(most, running)
        if running == 2:
            gate.set()
        await gate.wait()
        running -= 1
        return await _empty_describe(server, request)

    async def body(server: KafkaServer) -> None:
        client = await Client.open(server)
        await client.send(*(_describe(n) for n in range(8)))
        assert [await client.correlation(DESCRIBE_CONFIGS, 4) for _ in range(8)] == list(
            range(8))
        client.close()

    _serve(log_dir, _only(DESCRIBE_CONFIGS, describe), body, max_in_flight_per_connection=2)
    assert most == 2


def test_answers_waiting_for_a_flush_are_bounded_apart(log_dir: Path) -> None:
    """Requests whose handler answered Later(waiting=True) do not count as in
    flight: with one request in flight at most, three waiting ones are read
    and handled; the fourth is read once the oldest is answered."""
    futures: list[asyncio.Future[Entity]] = []
    handled_before_answers: list[int] = []

    def describe(server: ServerState, request: Request) -> Later:
        future: asyncio.Future[Entity] = asyncio.get_running_loop().create_future()
        futures.append(future)
        return Later(future, waiting=True)

    async def body(server: KafkaServer) -> None:
        client = await Client.open(server)
        await client.send(*(_describe(n) for n in range(6)))
        while len(futures) < 3:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # a fourth would have been read by now
        handled_before_answers.append(len(futures))
        answered = []
        while len(answered) < 6:
            for future in futures:
                if not future.done():
                    future.set_result(build(response_type(DESCRIBE_CONFIGS, 4), results=(),
                                            throttle_time=datetime.timedelta(0)))
            answered.append(await client.correlation(DESCRIBE_CONFIGS, 4))
        assert answered == list(range(6))
        client.close()

    _serve(log_dir, _only(DESCRIBE_CONFIGS, describe), body, max_in_flight_per_connection=1,
           max_waiting_per_connection=3)
    assert handled_before_answers == [3]


def test_pipelined_produces_to_an_always_topic_share_flushes_and_wait_for_them(
        log_dir: Path) -> None:
    """50 one-record produces sent at once to a durability="always" topic, with
    at most 4 requests in flight: each is answered, in order, only once a
    flush covered its offset, and the flushes were shared (waiting produces
    do not hold in-flight slots, so fewer than 50 / 4 flushes)."""
    from kio.index import load_request_schema

    from mqlog.logstore._kafka_batch import encode_records
    from mqlog.server.kafka._codec import part

    with mqlog.open(log_dir) as log:
        log.create_topic("sure", partitions=1, durability="always")
    schema = load_request_schema(PRODUCE, 9)
    batch = encode_records([mqlog.Record(b"v", timestamp=1)], 0)
    data = part(schema, "TopicProduceData")(name="sure", partition_data=(
        part(schema, "PartitionProduceData")(index=0, records=batch),))
    durable_below: list[int] = []

    async def body(server: KafkaServer) -> None:
        engine = server.engine
        make_durable_together = engine.make_durable_together

        def recording(wanted: list[tuple[str, int, int]]) -> dict:
            failures = make_durable_together(wanted)
            ((_topic, _partition, offset),) = wanted
            durable_below.append(offset)
            return failures

        engine.make_durable_together = recording  # type: ignore[method-assign]
        client = await Client.open(server)
        await client.send(*(encode_request(PRODUCE, 9, n, transactional_id=None, acks=-1,
                                           timeout=datetime.timedelta(seconds=30),
                                           topic_data=(data,)) for n in range(50)))
        for n in range(50):
            (size,) = struct.unpack(">i", await client.reader.readexactly(4))
            correlation, answer = decode_response(
                PRODUCE, 9, await client.reader.readexactly(size))
            written = answer.responses[0].partition_responses[0]
            assert (correlation, written.error_code, written.base_offset) == (n, 0, n)
            assert durable_below and max(durable_below) > n
        client.close()

    _serve(log_dir, default_table(), body, max_in_flight_per_connection=4)
    assert len(durable_below) < 50 / 4


def test_a_failed_flush_answers_kafka_storage_error_for_what_it_covered(
        log_dir: Path) -> None:
    """The flush of an always topic fails: the produces it covered are answered
    KAFKA_STORAGE_ERROR (56), not success, and the connection goes on."""
    from kio.index import load_request_schema

    from mqlog.errors import StorageFailedError
    from mqlog.logstore._kafka_batch import encode_records
    from mqlog.server.kafka._codec import part

    with mqlog.open(log_dir) as log:
        log.create_topic("sure", partitions=1, durability="always")
    schema = load_request_schema(PRODUCE, 9)
    data = part(schema, "TopicProduceData")(name="sure", partition_data=(
        part(schema, "PartitionProduceData")(
            index=0, records=encode_records([mqlog.Record(b"v", timestamp=1)], 0)),))

    async def body(server: KafkaServer) -> None:
        def failing(wanted: list[tuple[str, int, int]]) -> dict:
            error = StorageFailedError("the disk is gone", original=OSError(5, "EIO"))
            return {(topic, partition): error for topic, partition, _ in wanted}

        server.engine.make_durable_together = failing  # type: ignore[method-assign]
        client = await Client.open(server)
        await client.send(*(encode_request(PRODUCE, 9, n, transactional_id=None, acks=-1,
                                           timeout=datetime.timedelta(seconds=30),
                                           topic_data=(data,)) for n in range(3)),
                          encode_request(18, 0, 3))
        for n in range(3):
            (size,) = struct.unpack(">i", await client.reader.readexactly(4))
            correlation, answer = decode_response(
                PRODUCE, 9, await client.reader.readexactly(size))
            written = answer.responses[0].partition_responses[0]
            assert (correlation, written.error_code.value, written.base_offset) == (n, 56, -1)
            assert "the disk is gone" in written.error_message
        assert await client.correlation(18, 0) == 3
        client.close()

    _serve(log_dir, default_table(), body)


def _only(key: int, handler: Callable) -> ApiTable:
    table = ApiTable()
    table.register(key, 1, 4, handler, concurrent=True)
    return table


def test_connections_over_the_limit_are_closed(log_dir: Path) -> None:
    async def body(server: KafkaServer) -> None:
        first = await Client.open(server)
        await first.send(encode_request(18, 0, 1))
        assert await first.correlation(18, 0) == 1
        second = await Client.open(server)
        assert await second.closed()
        await first.send(encode_request(18, 0, 2))
        assert await first.correlation(18, 0) == 2
        first.close()

    _serve(log_dir, default_table(), body, max_connections=1)


def test_an_idle_connection_is_closed(log_dir: Path) -> None:
    async def body(server: KafkaServer) -> None:
        client = await Client.open(server)
        await client.send(encode_request(18, 0, 1))
        assert await client.correlation(18, 0) == 1
        assert await client.closed()

    _serve(log_dir, default_table(), body, idle_timeout_s=0.2)


def test_close_runs_the_hooks_and_answers_what_is_in_flight(log_dir: Path) -> None:
    """A request waiting on the group coordinator's state is answered once the
    shutdown hook (which the coordinator registers) releases it."""
    released, started = asyncio.Event(), asyncio.Event()
    told: list[bool] = []

    async def describe(server: ServerState, request: Request) -> Entity:
        started.set()
        await released.wait()
        return await _empty_describe(server, request)

    async def body(server: KafkaServer) -> None:
        async def hook() -> None:
            told.append(stopping(server.state).is_set())
            released.set()
        on_shutdown(server.state, hook)
        client = await Client.open(server)
        await client.send(_describe(1))
        await started.wait()
        closing = asyncio.create_task(server.close())
        assert await client.correlation(DESCRIBE_CONFIGS, 4) == 1
        assert await client.closed()
        await closing

    _serve(log_dir, _only(DESCRIBE_CONFIGS, describe), body)
    assert told == [True]


def test_registering_a_key_twice_or_a_version_without_schema_fails() -> None:
    table = default_table()
    with pytest.raises(ValueError, match="registered already"):
        table.register(18, 0, 4, _empty_describe)
    with pytest.raises(ValueError, match="no schema"):
        ApiTable().register(0, 0, 99, _empty_produce)


def test_close_gives_up_on_a_request_that_never_ends(log_dir: Path, caplog) -> None:
    """Past shutdown_timeout_s the request is cancelled and its connection closed."""
    started = asyncio.Event()

    async def describe(server: ServerState, request: Request) -> Entity:
        started.set()
        await asyncio.Event().wait()  # never set
        raise AssertionError("unreachable")

    async def body(server: KafkaServer) -> None:
        client = await Client.open(server)
        await client.send(_describe(1))
        await started.wait()
        await server.close()
        assert await client.closed()

    with caplog.at_level(logging.WARNING, logger="mqlog.server.kafka"):
        _serve(log_dir, _only(DESCRIBE_CONFIGS, describe), body, shutdown_timeout_s=0.2)
    assert any("unanswered" in record.getMessage() for record in caplog.records)
