"""Dead letters: list them, show one, redrive them (``Log.dead_letters``,
``mqlog.consumer.dead_letter_at``, ``Log.redrive``).

A dead letter is a record of a dead-letter topic (what queue groups gave up
on), with where it came from (``origin``), why (``reason``: the last nack's,
``expired``, or empty) and its state: ``pending``, ``redriven`` (appended
again to its origin, or to the topic a redrive named) or ``purged``. Its
key, value and headers (``dlq.*`` included) are encoded as records are
(``encoding``).

A topic that holds records other than dead letters is refused
(``invalid_argument``). Listing reads the whole topic and redriving appends
and writes the marks of the redriven letters: both run in a worker thread,
not on the event loop. A list answers at most ``limit`` letters (at most
``HttpLimits.max_batch``), in (partition, offset) order, and says whether
``more`` matched.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import pydantic
from fastapi import APIRouter, Path, Query, Request

from mqlog.consumer import DeadLetter, dead_letter_at
from mqlog.server.http._errors import ApiError, ErrorBody
from mqlog.server.http._limits import HttpLimits
from mqlog.server.http._log_api import log_of, refuse_internal
from mqlog.server.http._payloads import EncodingQuery, PayloadOut, payload_out

router = APIRouter(tags=["log"])

LetterState = Literal["pending", "redriven", "purged"]


class Origin(pydantic.BaseModel):
    """Where a dead letter was consumed from (``offset``: null when not recorded)."""

    topic: str
    partition: int
    offset: int | None


class DeadLetterOut(PayloadOut):
    partition: int
    offset: int
    state: LetterState
    #: The last nack's reason, "expired" for an expired record, "" when none was given.
    reason: str
    origin: Origin
    #: Deliveries before it was given up; null when not recorded.
    delivery_count: int | None
    first_delivery_ms: int | None
    last_delivery_ms: int | None
    #: The dead letter's timestamp (ms since the epoch).
    timestamp: int


class DeadLetterList(pydantic.BaseModel):
    dead_letters: list[DeadLetterOut]
    #: More letters matched than ``limit``.
    more: bool


class RedriveRequest(pydantic.BaseModel):
    """Which pending letters to move, and where: ``offsets`` (in every partition,
    or in ``partition``), all pending letters when null; to their origin, or to
    topic ``to`` (partition: the origin's, modulo its partition count).
    ``dry_run`` counts them and moves nothing."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    offsets: list[pydantic.NonNegativeInt] | None = None
    partition: pydantic.NonNegativeInt | None = None
    to: str | None = None
    dry_run: bool = False


class RedriveResult(pydantic.BaseModel):
    #: Letters moved (with ``dry_run``: that would move).
    redriven: int


@router.get("/dead-letters/{dlq_topic}", response_model=DeadLetterList,
            summary="List the letters of a dead-letter topic")
async def list_dead_letters(
        request: Request, dlq_topic: str,
        partition: Annotated[int | None, Query(
            ge=0, description="Only this partition's letters.")] = None,
        state: Annotated[LetterState | None, Query(
            description="Only the letters in this state.")] = None,
        limit: Annotated[int | None, Query(
            ge=1, description="At most this many letters (default and at most: "
                              "max_batch).")] = None,
        encoding: EncodingQuery = "utf-8",
) -> DeadLetterList:
    """The letters, in (partition, offset) order, with their states."""
    limits: HttpLimits = request.app.state.limits
    if limit is not None and limit > limits.max_batch:
        raise ApiError(400, "limit_exceeded",
                       f"limit={limit} is over max_batch={limits.max_batch}")
    wanted = limit or limits.max_batch
    log = log_of(request)
    letters = await asyncio.to_thread(log.dead_letters, dlq_topic, partition=partition,
                                      pending_only=state == "pending")
    chosen = [letter for letter in letters if state is None or letter.state == state]
    return DeadLetterList(dead_letters=[_letter_out(letter, encoding == "base64")
                                        for letter in chosen[:wanted]],
                          more=len(chosen) > wanted)


@router.get("/dead-letters/{dlq_topic}/{partition}/{offset}", response_model=DeadLetterOut,
            summary="Show one dead letter",
            responses={416: {"model": ErrorBody,
                             "description": "offset_out_of_range: no letter there"}})
async def show_dead_letter(
        request: Request, dlq_topic: str, partition: Annotated[int, Path(ge=0)],
        offset: Annotated[int, Path(ge=0)], encoding: EncodingQuery = "utf-8",
) -> DeadLetterOut:
    """The letter at ``offset`` of ``partition`` (416 when there is none)."""
    letter = dead_letter_at(log_of(request).engine, dlq_topic, partition, offset)
    return _letter_out(letter, encoding == "base64")


@router.post("/dead-letters/{dlq_topic}/redrive", response_model=RedriveResult,
             summary="Redrive dead letters")
async def redrive(request: Request, dlq_topic: str, body: RedriveRequest) -> RedriveResult:
    """Append the chosen pending letters again (without their ``dlq.*`` headers) and
    mark them redriven; a letter is redriven at most once."""
    limits: HttpLimits = request.app.state.limits
    if body.offsets is not None and len(body.offsets) > limits.max_batch:
        raise ApiError(400, "limit_exceeded", f"{len(body.offsets)} offsets in one request, "
                                              f"over max_batch={limits.max_batch}")
    if body.to is not None:
        refuse_internal(body.to, "written")
    moved = await asyncio.to_thread(log_of(request).redrive, dlq_topic, body.offsets,
                                    to=body.to, partition=body.partition,
                                    dry_run=body.dry_run)
    return RedriveResult(redriven=moved)


def _letter_out(letter: DeadLetter, force_base64: bool) -> DeadLetterOut:
    record = letter.record
    assert record.timestamp is not None  # read from the log
    return DeadLetterOut(
        partition=letter.partition, offset=letter.offset,
        state=letter.state,  # type: ignore[arg-type]  # one of LetterState, checked by the model
        reason=letter.reason,
        origin=Origin(topic=letter.origin_topic, partition=letter.origin_partition,
                      offset=letter.origin_offset),
        delivery_count=letter.delivery_count, first_delivery_ms=letter.first_delivery_ms,
        last_delivery_ms=letter.last_delivery_ms, timestamp=record.timestamp,
        **payload_out(record.key, record.value, record.headers, force_base64))
