"""GET /topics/{topic}/partitions/{partition}/records: read a partition from an
offset or a time, waiting for records with ``wait``.

``offset=N`` reads from offset N (the start offset up to the end offset;
reading at the end returns no records); ``time=MS`` from the first record
whose timestamp is at or after MS (``Log.offset_for_time``: the end offset
when there is none). At most ``limit`` records (default
:data:`DEFAULT_LIMIT`, at most ``HttpLimits.max_batch``) and, past the first
record, at most :data:`READ_BYTES_MAX` bytes of keys, headers and values.

``wait=S`` (at most ``HttpLimits.max_wait_s``) is a long poll: when there is
nothing to read yet, the response waits until a record arrives (appended by
any process) or ``S`` seconds pass, then answers what there is, maybe
nothing. ``next_offset`` is where the next read goes on: after the last
record returned, else where this one started.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import pydantic
from fastapi import APIRouter, Path, Query, Request

from mqlog.errors import ConfigError
from mqlog.logstore import Record
from mqlog.server.http._errors import ApiError, ErrorBody
from mqlog.server.http._limits import HttpLimits
from mqlog.server.http._log_api import log_of
from mqlog.server.http._payloads import EncodingQuery, PayloadOut, payload_out
from mqlog.server.http._waiting import append_watch

router = APIRouter(tags=["log"])

#: Records one read returns when the request does not say (``limit``).
DEFAULT_LIMIT = 100
#: Keys + headers + values one read returns at most, past its first record: bounds
#: a response (1,000 records of 1 MiB would be a gigabyte) whatever ``limit`` says.
READ_BYTES_MAX = 4 * 1024 * 1024


class RecordOut(PayloadOut):
    offset: int
    #: ms since the epoch.
    timestamp: int


class RecordsRead(pydantic.BaseModel):
    records: list[RecordOut]
    #: Where to read next: after the last record, else where this read started.
    next_offset: int
    #: The partition's end offset after the read (its next record's offset).
    end_offset: int


@router.get("/topics/{topic}/partitions/{partition}/records", response_model=RecordsRead,
            summary="Read a partition from an offset or a time",
            responses={416: {"model": ErrorBody,
                             "description": "offset_out_of_range: outside the partition"},
                       500: {"model": ErrorBody,
                             "description": "corrupt_record: damaged on disk"}})
async def read_records(
        request: Request, topic: str, partition: Annotated[int, Path(ge=0)],
        offset: Annotated[int | None, Query(ge=0, description="Read from this offset.")] = None,
        time: Annotated[int | None, Query(ge=0, description=(
            "Read from the first record at or after this time (ms since the epoch)."))] = None,
        limit: Annotated[int, Query(ge=1, description=(
            "At most this many records (max_batch at most)."))] = DEFAULT_LIMIT,
        wait: Annotated[float, Query(ge=0, allow_inf_nan=False, description=(
            "Seconds to wait for a record when there is none yet (max_wait_s at "
            "most)."))] = 0.0,
        encoding: EncodingQuery = "utf-8",
) -> RecordsRead:
    """Records from ``offset`` or ``time`` (exactly one of them), maybe after a wait."""
    limits: HttpLimits = request.app.state.limits
    if (offset is None) == (time is None):
        raise ConfigError("give exactly one of offset and time")
    if limit > limits.max_batch:
        raise ApiError(400, "limit_exceeded",
                       f"limit={limit} is over max_batch={limits.max_batch}")
    if wait > limits.max_wait_s:
        raise ApiError(400, "limit_exceeded",
                       f"wait={wait} is over max_wait_s={limits.max_wait_s}")
    log = log_of(request)
    if offset is None:
        assert time is not None  # exactly one of them, checked above
        offset = log.offset_for_time(topic, partition, time)
    records = await _read_waiting(request, topic, partition, offset, limit, wait)
    force_base64 = encoding == "base64"
    out = []
    for record in records:
        assert record.offset is not None and record.timestamp is not None  # read: both set
        out.append(RecordOut(offset=record.offset, timestamp=record.timestamp,
                             **payload_out(record.key, record.value, record.headers,
                                           force_base64)))
    next_offset = out[-1].offset + 1 if out else offset
    return RecordsRead(records=out, next_offset=next_offset,
                       end_offset=log.end_offset(topic, partition))


async def _read_waiting(request: Request, topic: str, partition: int, start: int, limit: int,
                        wait: float) -> list[Record]:
    """The records at ``start``; when there are none, the first found within ``wait``
    seconds (the append counter is read before each read, so an append between the
    read and the wait still wakes it)."""
    log = log_of(request)
    records = log.read(topic, partition, start, limit, READ_BYTES_MAX)
    if records or wait <= 0:
        return records
    watch = append_watch(request.app)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        seen = watch.counter()
        records = log.read(topic, partition, start, limit, READ_BYTES_MAX)
        remaining = deadline - loop.time()
        if records or remaining <= 0:
            return records
        await watch.changed(seen, remaining)
