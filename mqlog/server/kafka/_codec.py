"""Kafka request and response frames, through kio's codec (generated from
Kafka's own message schemas); nothing here knows a message's fields.

A frame on the wire is a 4-byte big-endian size, then that many bytes. A
request's bytes begin with its header: ``api_key`` (i16), ``api_version``
(i16), ``correlation_id`` (i32), ``client_id`` and, for flexible versions,
tagged fields; the version of the header follows from the API and version,
and kio knows it (``__header_schema__``).

Invariants: :func:`decode_request` either returns a request or raises
:class:`MalformedRequestError`; it never raises anything else on any input.
A null where the schema allows none is malformed (``_nulls``). Produce and
Fetch, on every record's path, are decoded by hand (``_hot_requests``) into
classes with the same fields as kio's entities.
Bytes after the body are ignored, as Kafka's broker ignores them: librdkafka
2.x sends three (its all-topics Metadata v9+ request keeps a 4-byte
placeholder where the 1-byte null array goes). Response classes are looked
up by the request's API key and version, so a response is always encoded in
the version the client asked for.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import struct
import sys
from collections.abc import Callable
from functools import cache
from typing import Any, NamedTuple

from kio.index import KioIndexError, load_request_schema, load_response_schema
from kio.serial import entity_reader, entity_writer

from mqlog.errors import MqlogError
from mqlog.server.kafka import _hot_requests
from mqlog.server.kafka._array_bounds import check_array_lengths
from mqlog.server.kafka._nulls import check_nulls

_PREFIX = struct.Struct(">hhi")
_SIZE = struct.Struct(">i")

#: ``throttle_time`` of every response: this server does not throttle (kio
#: types durations as timedeltas).
NO_THROTTLE = datetime.timedelta(0)

#: A kio entity (a frozen dataclass generated from a Kafka message schema).
Entity = Any


class MalformedRequestError(MqlogError, ValueError):
    """A request frame that does not decode: truncated, trailing bytes, a
    bad length or string, or an API key and version with no schema. The
    server closes the connection that sent it."""


class UnsupportedVersionError(MalformedRequestError):
    """A request in a version no schema describes (newer than this server
    knows). ApiVersions is the exception: it is answered in version 0 with
    the versions the server supports (KIP-511)."""

    def __init__(self, message: str, api_key: int, correlation_id: int) -> None:
        super().__init__(message)
        self.api_key = api_key
        self.correlation_id = correlation_id


class Request(NamedTuple):
    """One decoded request: its header fields and body (a kio entity)."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str
    body: Entity


def peek_prefix(frame: bytes | memoryview) -> tuple[int, int, int]:
    """(api_key, api_version, correlation_id) of a request frame; the first
    eight bytes are the same in every header version."""
    if len(frame) < _PREFIX.size:
        raise MalformedRequestError(f"request of {len(frame)} bytes is shorter than a header")
    key, version, correlation = _PREFIX.unpack_from(frame, 0)
    return key, version, correlation


@cache
def _request_codec(api_key: int, api_version: int) -> tuple[type, Callable, type, Callable]:
    """(header type, its reader, body type, its reader) of a request."""
    schema = load_request_schema(api_key, api_version)
    header = schema.__header_schema__
    return header, entity_reader(header), schema, entity_reader(schema)


@cache
def _response_codec(api_key: int, api_version: int) -> tuple[type, Callable, Callable]:
    schema = load_response_schema(api_key, api_version)
    header = schema.__header_schema__
    return header, entity_writer(header), entity_writer(schema)


def decode_request(frame: bytes | memoryview) -> Request:
    """Decode a whole request frame (without its size prefix)."""
    api_key, api_version, correlation = peek_prefix(frame)
    try:
        header_type, read_header, body_type, read_body = _request_codec(api_key, api_version)
    except KioIndexError as error:  # an unknown API key, or a version with no schema
        raise UnsupportedVersionError(
            f"no schema for API key {api_key} version {api_version}", api_key,
            correlation) from error
    data = bytes(frame)
    if _hot_requests.decodes(api_key, api_version):  # Produce, Fetch: by hand, for speed
        try:
            client_id, body = _hot_requests.decode(api_key, api_version, data)
        except Exception as error:
            raise MalformedRequestError(
                f"API key {api_key} v{api_version}: {type(error).__name__}: {error}") from error
        return Request(api_key, api_version, correlation, client_id or "", body)
    try:
        # kio's reader aborts the process on an absurd array length: see _array_bounds.
        check_array_lengths(body_type, data, check_array_lengths(header_type, data, 0))
        header, used = read_header(data, 0)
        body, _ = read_body(data, used)
        check_nulls(body)
    except Exception as error:  # kio raises several kinds on bad bytes
        raise MalformedRequestError(
            f"API key {api_key} v{api_version}: {type(error).__name__}: {error}") from error
    return Request(api_key, api_version, correlation, header.client_id or "", body)


@cache
def response_type(api_key: int, api_version: int) -> type:
    """The kio response class of ``api_key`` in ``api_version``."""
    return load_response_schema(api_key, api_version)


def part(entity_type: type, name: str) -> type:
    """A nested entity class of the same message version as ``entity_type``
    (for example ``part(JoinGroupResponse_v5, "JoinGroupResponseMember")``)."""
    return getattr(sys.modules[entity_type.__module__], name)


def build(entity_type: type, **fields: Any) -> Entity:
    """An instance of ``entity_type`` from ``fields``, dropping the ones this
    version of the message does not have; fields it has but that are not
    given take their schema defaults (an error if there is none)."""
    names = _field_names(entity_type)
    return entity_type(**{name: value for name, value in fields.items() if name in names})


@cache
def _field_names(entity_type: type) -> frozenset[str]:
    return frozenset(field.name for field in dataclasses.fields(entity_type))


def has_field(entity_type: type, name: str) -> bool:
    """True when this version of the message has field ``name``."""
    return name in _field_names(entity_type)


def encode_response(api_key: int, api_version: int, correlation_id: int,
                    body: Entity) -> bytes:
    """The response frame (size prefix included) for a request."""
    header_type, write_header, write_body = _response_codec(api_key, api_version)
    out = io.BytesIO()
    out.write(b"\0\0\0\0")
    write_header(out, header_type(correlation_id=correlation_id))
    write_body(out, body)
    frame = out.getbuffer()
    _SIZE.pack_into(frame, 0, len(frame) - 4)
    del frame
    return out.getvalue()
