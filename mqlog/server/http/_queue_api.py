"""The queue API (the SQS shape) on queue groups: send, receive with a receipt
handle and a visibility timeout (long polling up to ``wait``), delete (ack),
release (nack) and change the visibility (extend) by receipt handle.

Routes:

- ``POST /queues/{topic}/messages``: one message (``{"message": ...}``) or a
  batch (``{"messages": [...]}``); each may have ``key``, ``headers``,
  ``priority`` (0-9: the lane topic ``<topic>.p<n>``), ``delay`` and ``ttl``
  (seconds). Every message is checked before any is appended; the messages of
  one priority and partition are appended together, in order. A keyed message
  goes to its key's partition (as the embedded producer's), the keyless ones
  of a request to one partition, the next one at the next request.
- ``GET /queues/{topic}/messages?group=G&batch_size=N&wait=S&visibility=S``:
  ``Log.receive_with_receipts``; with nothing ready it waits for an append
  (the app's append watch) or for the next delayed message or running-out
  lock to come due (``next_ready_ms``), up to ``wait`` seconds; a client that
  hung up meanwhile is given nothing (no message is held for nobody).
- ``DELETE /queues/{topic}/messages/{receipt_handle}``: ``Log.ack_receipts``.
- ``POST .../{receipt_handle}/release``: ``Log.nack_receipt``.
- ``POST .../{receipt_handle}/visibility``: ``Log.extend_receipt``.

A receipt handle here is ``<group>:<library receipt handle>`` (opaque to
clients): deleting needs no group parameter. A stale handle (the visibility
ran out and the message was handed out again, or it was deleted or released)
is 409 ``receipt_stale``, never a success.

Everything runs in the event loop (microseconds) except what waits: long
polls await the watch, and on a topic with ``durability="always"`` appends
await the shared flushes (``_waiting``) while the receive, delete, release
and visibility calls (which flush the group's state file) run in a worker
thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Callable
from typing import Annotated, TypeVar

import msgpack
import pydantic
from fastapi import APIRouter, Query, Request, Response

from mqlog.consumer import next_ready_ms
from mqlog.errors import RecordTooLargeError, TopicExistsError
from mqlog.headers import DELIVER_AT, EXPIRES_AT
from mqlog.lanes import PRIORITY_MAX, lane_topic
from mqlog.log import Log
from mqlog.logstore import Engine, Record
from mqlog.names import validate_name
from mqlog.producer import SECONDS_MAX, key_partition
from mqlog.server.http._errors import ApiError
from mqlog.server.http._limits import HttpLimits
from mqlog.server.http._payloads import Encoding, payload_out, text_bytes
from mqlog.server.http._waiting import append_watch, appended, durable

router = APIRouter(tags=["queues"])

_T = TypeVar("_T")
_HANDLE = re.compile(r"([a-zA-Z0-9._-]+):([a-zA-Z0-9._-]+):(\d+):(\d+):(\d+):(\d+)\Z")
Seconds = Annotated[float, pydantic.Field(ge=0, le=SECONDS_MAX, allow_inf_nan=False)]


# -- models --------------------------------------------------------------------------------

class OutgoingMessage(pydantic.BaseModel):
    """One message to send."""

    model_config = pydantic.ConfigDict(extra="forbid")

    message: str = pydantic.Field(description="The body, as text in `encoding`.")
    encoding: Encoding = pydantic.Field(
        "utf-8", description="How `message`, `key` and header values are written.")
    key: str | None = pydantic.Field(None, description="Messages with one key keep "
                                     "their order (one partition).")
    headers: dict[str, str] | None = None
    priority: int = pydantic.Field(0, ge=0, le=PRIORITY_MAX,
                                   description="Higher priorities are received first.")
    delay: Seconds | None = pydantic.Field(None, description="Seconds before it may be "
                                           "received.")
    ttl: Annotated[float, pydantic.Field(gt=0, le=SECONDS_MAX, allow_inf_nan=False)] | None = (
        pydantic.Field(None, description="Seconds after which it is dropped if not received."))


class MessageBatch(pydantic.BaseModel):
    """Several messages to send in one request."""

    model_config = pydantic.ConfigDict(extra="forbid")

    messages: list[OutgoingMessage] = pydantic.Field(min_length=1)


def _body_kind(body: object) -> str:
    """Which model a send's body is: a batch has ``messages``."""
    return "batch" if isinstance(body, dict) and "messages" in body else "one"


#: A send's body: one message or a batch (told apart by ``messages``).
SendBody = Annotated[Annotated[OutgoingMessage, pydantic.Tag("one")]
                     | Annotated[MessageBatch, pydantic.Tag("batch")],
                     pydantic.Discriminator(_body_kind)]


class SentMessage(pydantic.BaseModel):
    """Where a message was appended. ``topic`` is the lane topic of its priority."""

    id: str
    topic: str
    partition: int
    offset: int


class SentMessages(pydantic.BaseModel):
    messages: list[SentMessage]


class ReceivedMessage(pydantic.BaseModel):
    """A message held for the receiver until its visibility runs out."""

    id: str
    body: str
    encoding: Encoding
    key: str | None
    headers: dict[str, str]
    receipt_handle: str
    delivery_count: int
    priority: int
    topic: str
    partition: int
    offset: int
    timestamp: int


class ReceivedMessages(pydantic.BaseModel):
    messages: list[ReceivedMessage]


class Release(pydantic.BaseModel):
    """Release (nack): receivable again after ``delay`` seconds (default: the
    back-off for its delivery count), with ``reason`` kept for its dead letter."""

    model_config = pydantic.ConfigDict(extra="forbid")

    delay: Seconds | None = None
    reason: str | None = None


class Visibility(pydantic.BaseModel):
    """Hold the message ``visibility`` seconds from now (0: release it at once)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    visibility: Seconds


# -- routes ----------------------------------------------------------------------------------

@router.post("/queues/{topic}/messages", status_code=201, response_model=SentMessages,
             summary="Send messages to a queue")
async def send_messages(request: Request, topic: str,
                        body: SendBody) -> Response:
    """Append one message or a batch; answered once they are as durable as the
    topic's durability says."""
    validate_name("topic", topic)  # not mqlog's internal topics
    items = [body] if isinstance(body, OutgoingMessage) else body.messages
    limits: HttpLimits = request.app.state.limits
    if len(items) > limits.max_batch:
        raise ApiError(400, "limit_exceeded",
                       f"{len(items)} messages, over max_batch={limits.max_batch}")
    engine = _log(request).engine
    config = engine.topic_config(topic)
    count = engine.partition_count(topic)
    keyless = _next_partition(request, topic, count)
    now = engine.now_ms()
    groups: dict[tuple[str, int], list[tuple[int, Record | bytes]]] = {}
    for index, item in enumerate(items):
        record = _record(item, index, now, config.max_record_bytes)
        key = record.key if isinstance(record, Record) else None
        partition = keyless if key is None else key_partition(key, count)
        groups.setdefault((lane_topic(topic, item.priority), partition), []).append(
            (index, record))
    for lane in {lane for lane, _ in groups} - {topic}:
        _create_lane(engine, topic, lane)
    sent: list[dict[str, object]] = [{}] * len(items)
    ends = []
    for (lane, partition), entries in groups.items():
        first = engine.append(lane, partition, [record for _, record in entries], flush=False)
        for position, (index, _) in enumerate(entries):
            offset = first + position
            sent[index] = {"id": f"{lane}:{partition}:{offset}", "topic": lane,
                           "partition": partition, "offset": offset}
        ends.append((lane, partition, first + len(entries)))
    appended(request.app)
    if config.durability == "always":
        await asyncio.gather(*(durable(request.app, *end) for end in ends))
    # SentMessages, serialized here: building and checking a model per message
    # cost more than the appends of a batch.
    return Response(json.dumps({"messages": sent}, separators=(",", ":")), 201,
                    media_type="application/json")


@router.get("/queues/{topic}/messages", response_model=ReceivedMessages,
            summary="Receive messages of a queue group")
async def receive_messages(
        request: Request, topic: str,
        group: Annotated[str, Query(description="The queue group receiving.")],
        batch_size: Annotated[int, Query(ge=1, description="Most messages to return.")] = 1,
        wait: Annotated[float, Query(ge=0, allow_inf_nan=False,
                                     description="Seconds to wait for one (long polling).")
                        ] = 0.0,
        visibility: Annotated[float, Query(gt=0, allow_inf_nan=False,
                                           description="Seconds each is held for the "
                                                       "receiver.")] = 30.0,
) -> ReceivedMessages:
    """Up to ``batch_size`` messages, each held ``visibility`` seconds by its
    receipt handle; with none ready, waits up to ``wait`` seconds for one."""
    validate_name("topic", topic)  # not mqlog's internal topics
    limits: HttpLimits = request.app.state.limits
    _check_limit("batch_size", batch_size, limits.max_batch, "max_batch")
    _check_limit("wait", wait, limits.max_wait_s, "max_wait_s")
    _check_limit("visibility", visibility, limits.max_visibility_s, "max_visibility_s")
    log = _log(request)
    engine = log.engine
    in_thread = engine.topic_config(topic).durability == "always"
    watch = append_watch(request.app)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        seen = watch.counter()
        got = await _call(in_thread, lambda: log.receive_with_receipts(
            group, topic, max_messages=batch_size, visibility_s=visibility))
        remaining = deadline - loop.time()
        if got or remaining <= 0:
            break
        due = next_ready_ms(engine, group, topic)
        if due is not None:
            remaining = min(remaining, max(due - engine.now_ms(), 1) / 1000)
        await watch.changed(seen, remaining)
        if await request.is_disconnected():
            return ReceivedMessages(messages=[])  # take nothing for a client that left
    priorities = {lane_topic(topic, p): p for p in range(PRIORITY_MAX + 1)}
    out = []
    for received in got:
        message = received.message
        payload = payload_out(message.key, message.value, message.headers)
        out.append(ReceivedMessage(
            id=f"{message.topic}:{message.partition}:{message.offset}",
            body=payload["value"], encoding=payload["encoding"], key=payload["key"],
            headers=payload["headers"],
            receipt_handle=f"{group}:{received.receipt}",
            delivery_count=received.delivery_count, priority=priorities[message.topic],
            topic=message.topic, partition=message.partition, offset=message.offset,
            timestamp=message.timestamp))
    return ReceivedMessages(messages=out)


@router.delete("/queues/{topic}/messages/{receipt_handle}", status_code=204,
               response_class=Response, summary="Delete (ack) a received message")
async def delete_message(request: Request, topic: str, receipt_handle: str) -> Response:
    """Done with it: never received again. 409 ``receipt_stale`` if the handle is
    not the message's current one."""
    group, receipt, in_thread = _handle(request, topic, receipt_handle)
    log = _log(request)
    await _call(in_thread, lambda: log.ack_receipts(group, [receipt]))
    return Response(status_code=204)


@router.post("/queues/{topic}/messages/{receipt_handle}/release", status_code=204,
             response_class=Response, summary="Release (nack) a received message")
async def release_message(request: Request, topic: str, receipt_handle: str,
                          body: Release | None = None) -> Response:
    """Receivable again after ``delay`` seconds; after ``max_deliveries`` (5)
    deliveries the next receive moves it to the dead-letter topic
    ``<topic>.dlq`` with ``reason``. 409 ``receipt_stale`` for a stale handle."""
    release = body or Release()
    group, receipt, in_thread = _handle(request, topic, receipt_handle)
    log = _log(request)
    await _call(in_thread, lambda: log.nack_receipt(group, receipt, delay_s=release.delay,
                                                    reason=release.reason))
    return Response(status_code=204)


@router.post("/queues/{topic}/messages/{receipt_handle}/visibility", status_code=204,
             response_class=Response, summary="Change a received message's visibility")
async def change_visibility(request: Request, topic: str, receipt_handle: str,
                            body: Visibility) -> Response:
    """Hold the message ``visibility`` seconds from now (the handle stays
    current). 409 ``receipt_stale`` for a stale handle."""
    limits: HttpLimits = request.app.state.limits
    _check_limit("visibility", body.visibility, limits.max_visibility_s, "max_visibility_s")
    group, receipt, in_thread = _handle(request, topic, receipt_handle)
    log = _log(request)
    await _call(in_thread, lambda: log.extend_receipt(group, receipt, body.visibility))
    return Response(status_code=204)


# -- helpers -----------------------------------------------------------------------------------

def _log(request: Request) -> Log:
    log: Log = request.app.state.log
    return log


def _record(item: OutgoingMessage, index: int, now_ms: int, max_record_bytes: int
            ) -> Record | bytes:
    """The record of one message, checked as the engine will check it: its bare
    value when it has no key and no headers (the engine's fast path)."""
    if (item.encoding == "utf-8" and item.key is None and not item.headers
            and item.delay is None and item.ttl is None):
        value = item.message.encode()  # the common case, checked alone
        if len(value) > max_record_bytes:
            raise RecordTooLargeError(f"messages[{index}] is {len(value)} bytes, over "
                                      f"max_record_bytes={max_record_bytes}")
        return value
    where = f"messages[{index}]"
    value = text_bytes(item.message, item.encoding, f"{where}.message")
    key = None if item.key is None else text_bytes(item.key, item.encoding, f"{where}.key")
    headers = {name: text_bytes(text, item.encoding, f"{where}.headers.{name}")
               for name, text in (item.headers or {}).items()}
    if item.delay is not None:
        headers[DELIVER_AT] = str(now_ms + int(item.delay * 1000)).encode()
    if item.ttl is not None:
        headers[EXPIRES_AT] = str(now_ms + int(item.ttl * 1000)).encode()
    size = len(value) + (0 if key is None else len(key)) + (
        len(msgpack.packb(headers, use_bin_type=True)) if headers else 0)
    if size > max_record_bytes:
        raise RecordTooLargeError(f"{where} is {size} bytes (key + headers + value), over "
                                  f"max_record_bytes={max_record_bytes}")
    if key is None and not headers:
        return value
    return Record(value, key, headers or None)


def _next_partition(request: Request, topic: str, count: int) -> int:
    """The partition of this request's keyless messages: each topic's in turn."""
    turns: dict[str, int] | None = getattr(request.app.state, "queue_turns", None)
    if turns is None:
        turns = request.app.state.queue_turns = {}
    turn = turns.get(topic, -1) + 1
    turns[topic] = turn
    return turn % count


def _create_lane(engine: Engine, topic: str, lane: str) -> None:
    """Create a priority lane of ``topic`` as the embedded producer does."""
    if engine.has_topic(lane):
        return
    base = engine.describe_topic(topic)
    try:
        engine.create_topic(lane, len(base.partitions), **dataclasses.asdict(base.config))
    except TopicExistsError:
        pass


def _handle(request: Request, topic: str, handle: str) -> tuple[str, str, bool]:
    """(group, library receipt handle, whether to call the log in a thread) of a
    handle of ``topic``; 400 ``invalid_receipt`` for anything else."""
    found = _HANDLE.match(handle)
    lanes = {lane_topic(topic, p) for p in range(PRIORITY_MAX + 1)}
    if found is None or found[2] not in lanes:
        raise ApiError(400, "invalid_receipt",
                       f"{handle!r} is not a receipt handle of a message of {topic!r}")
    engine = _log(request).engine
    in_thread = engine.topic_config(found[2]).durability == "always"
    return found[1], handle[len(found[1]) + 1:], in_thread


def _check_limit(name: str, value: float, limit: float, limit_name: str) -> None:
    if value > limit:
        raise ApiError(400, "limit_exceeded", f"{name}={value} is over {limit_name}={limit}")


async def _call(in_thread: bool, call: Callable[[], _T]) -> _T:
    """``call()`` in a worker thread (it flushes: the loop must not wait) or here."""
    if in_thread:
        return await asyncio.to_thread(call)
    return call()
