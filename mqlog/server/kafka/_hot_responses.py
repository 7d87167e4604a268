"""Produce and Fetch responses written directly: the two responses a client
waits for on every record it sends or reads.

Every other response goes through kio's schema-generated codec
(``_codec``). These two are hand-written because measuring said so: on this
machine kio built and encoded a one-partition Produce response v10 in about
65 us (48 of them in the flexible-version writer), about a third of the
server's whole cost of a one-record produce; this module writes the same
bytes in a few microseconds. ``tests/server/test_hot_responses.py`` checks
that both encoders produce exactly kio's bytes for every version served, so
the schemas stay the one definition.

Layout per Kafka's message schemas (ProduceResponse v3-v12, FetchResponse
v4-v16): versions from 9 (Produce) and 12 (Fetch) on are "flexible": compact
arrays and strings (unsigned varint length + 1), a tagged-field section (here
always empty: no tagged field differs from its default) after each
structure, and response header v1 (the correlation id, then tagged fields).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from typing import NamedTuple

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_PARTITION_V3 = struct.Struct(">ihqq")  # index, error code, base offset, log append time
_I64 = struct.Struct(">q")
_FETCH_PARTITION = struct.Struct(">ihqq")  # index, error code, high watermark, last stable
_NO_TAGS = b"\0"
_NULL_STRING = _I16.pack(-1)

#: First flexible version of each response.
PRODUCE_FLEXIBLE = 9
FETCH_FLEXIBLE = 12


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _count(length: int, flexible: bool) -> bytes:
    """An array's (or bytes') length prefix."""
    return _uvarint(length + 1) if flexible else _I32.pack(length)


def _string(text: str | None, flexible: bool) -> bytes:
    if text is None:
        return b"\0" if flexible else _NULL_STRING
    data = text.encode()
    return (_uvarint(len(data) + 1) if flexible else _I16.pack(len(data))) + data


def _framed(parts: list[bytes]) -> bytes:
    """``parts`` behind the 4-byte size of their total."""
    parts[0] = _I32.pack(sum(map(len, parts)))  # parts[0] is the empty placeholder
    return b"".join(parts)


class ProducedPartition(NamedTuple):
    """One partition's answer to a produce."""

    partition: int
    error_code: int
    base_offset: int
    log_start_offset: int
    error_message: str | None


def produce_response(version: int, correlation_id: int,
                     topics: Sequence[tuple[str, Sequence[ProducedPartition]]]) -> bytes:
    """The framed ProduceResponse (v3 and later) of ``topics``."""
    flexible = version >= PRODUCE_FLEXIBLE
    parts = [b"", _I32.pack(correlation_id)]
    if flexible:
        parts.append(_NO_TAGS)
    parts.append(_count(len(topics), flexible))
    for name, partitions in topics:
        parts.append(_string(name, flexible))
        parts.append(_count(len(partitions), flexible))
        for partition in partitions:
            parts.append(_PARTITION_V3.pack(partition.partition, partition.error_code,
                                            partition.base_offset, -1))
            if version >= 5:
                parts.append(_I64.pack(partition.log_start_offset))
            if version >= 8:
                parts.append(_count(0, flexible))  # record errors
                parts.append(_string(partition.error_message, flexible))
            if flexible:
                parts.append(_NO_TAGS)
        if flexible:
            parts.append(_NO_TAGS)
    parts.append(_I32.pack(0))  # throttle time
    if flexible:
        parts.append(_NO_TAGS)
    return _framed(parts)


class FetchedPartition(NamedTuple):
    """One partition's answer to a fetch: ``records`` the record batches (written
    one after the other, not joined first), None for an error."""

    partition: int
    error_code: int
    high_watermark: int
    log_start_offset: int
    records: Sequence[bytes] | None


def fetch_response(version: int, correlation_id: int,
                   topics: Sequence[tuple[str, uuid.UUID | None,
                                          Sequence[FetchedPartition]]]) -> bytes:
    """The framed FetchResponse (v4 and later) of ``topics``: (name, id,
    partitions); topics are named by id from v13 on. No session (id 0), no
    aborted transactions, no preferred replica; the last stable offset is the
    high watermark (no transactions). A partition with an error gets an empty
    record set, as Kafka sends: librdkafka takes a null one for a broken
    response and drops the connection."""
    flexible = version >= FETCH_FLEXIBLE
    parts = [b"", _I32.pack(correlation_id)]
    if flexible:
        parts.append(_NO_TAGS)
    parts.append(_I32.pack(0))  # throttle time
    if version >= 7:
        parts.append(b"\0\0\0\0\0\0")  # error code 0, session id 0
    parts.append(_count(len(topics), flexible))
    for name, identifier, partitions in topics:
        if version >= 13:
            parts.append((identifier or uuid.UUID(int=0)).bytes)
        else:
            parts.append(_string(name, flexible))
        parts.append(_count(len(partitions), flexible))
        for partition in partitions:
            parts.append(_FETCH_PARTITION.pack(partition.partition, partition.error_code,
                                               partition.high_watermark,
                                               partition.high_watermark))
            if version >= 5:
                parts.append(_I64.pack(partition.log_start_offset))
            parts.append(b"\0" if flexible else b"\xff\xff\xff\xff")  # no aborted list
            if version >= 11:
                parts.append(b"\xff\xff\xff\xff")  # preferred read replica -1
            records = partition.records or ()  # an error: empty, never null (see above)
            parts.append(_count(sum(map(len, records)), flexible))
            parts.extend(records)
            if flexible:
                parts.append(_NO_TAGS)
        if flexible:
            parts.append(_NO_TAGS)
    if flexible:
        parts.append(_NO_TAGS)
    return _framed(parts)
