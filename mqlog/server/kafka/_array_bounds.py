"""Refuse a request whose arrays claim more elements than its frame has bytes,
before the codec reads it.

kio's native reader reserves room for an array's claimed length before it
reads the elements, and a length of billions (five bytes of varint) is an
allocation that fails -- which aborts the process instead of raising. A
20-byte Metadata request would kill the server. So every request is walked
first, along the same schema (kio's field classes): each array's claimed
length must be at most the bytes left in the frame (an element takes at
least one byte), else :class:`ArrayTooLong`. The walk reads only lengths,
never builds a value: strings, bytes and records are skipped, fixed-size
fields stepped over, tagged fields walked within their declared size. A
frame that ends early stops the walk quietly: the codec reports it.

Plans (the steps of each entity type) are built once per type and kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import cache

from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveTupleField,
    classify_field,
    get_field_tag,
    get_schema_field_type,
    is_optional,
)

#: Bytes of the fixed-size primitive types of the request schemas.
_FIXED = {"bool": 1, "int8": 1, "int16": 2, "int32": 4, "int64": 8, "uuid": 16,
          "timedelta_i32": 4, "timedelta_i64": 8, "float64": 8, "uint8": 1,
          "uint16": 2, "uint32": 4, "uint64": 8, "error_code": 2, "datetime_i64": 8}


class ArrayTooLong(ValueError):
    """An array of the request claims more elements than the frame has bytes left."""


class _Ended(Exception):
    """The frame ended inside a field: the codec will say so."""


#: A step reads one field at ``data[position:]`` and returns the position after it.
Step = Callable[[bytes, int], int]


def check_array_lengths(entity_type: type, data: bytes, position: int) -> int:
    """Walk ``data`` from ``position`` as an ``entity_type`` (a kio schema class):
    ArrayTooLong if an array claims more elements than bytes remain. Returns the
    position after the entity (or the end of ``data`` if it ends early)."""
    try:
        return _entity_step(entity_type)(data, position)
    except _Ended:
        return len(data)


def _uvarint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 28:
            raise _Ended
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def _int(data: bytes, position: int, size: int) -> tuple[int, int]:
    end = position + size
    if end > len(data):
        raise _Ended
    return int.from_bytes(data[position:end], "big", signed=True), end


def _skip(data: bytes, position: int, size: int) -> int:
    end = position + size
    if size < 0 or end > len(data):
        raise _Ended
    return end


@cache
def _entity_step(entity_type: type) -> Step:
    """The step reading one ``entity_type``: its fields in order, then (flexible
    types) its tagged fields."""
    flexible = bool(getattr(entity_type, "__flexible__", False))
    header = entity_type.__name__ == "RequestHeader"
    ordered: list[Step] = []
    tagged: dict[int, Step] = {}
    for field in dataclasses.fields(entity_type):
        tag = get_field_tag(field)
        step = _field_step(field, flexible, header, tag is not None)
        if tag is None:
            ordered.append(step)
        else:
            tagged[int(tag)] = step

    def read(data: bytes, position: int) -> int:
        for step in ordered:
            position = step(data, position)
        if flexible:
            position = _tagged_fields(data, position, tagged)
        return position

    return read


def _tagged_fields(data: bytes, position: int, tagged: dict[int, Step]) -> int:
    count, position = _uvarint(data, position)
    for _ in range(count):
        tag, position = _uvarint(data, position)
        size, position = _uvarint(data, position)
        end = _skip(data, position, size)
        step = tagged.get(tag)
        if step is not None:
            step(data[:end], position)  # within its declared size
        position = end
    return position


def _field_step(field: dataclasses.Field, flexible: bool, header: bool, tag: bool) -> Step:
    field_class = classify_field(field)
    if isinstance(field_class, EntityTupleField):
        return _array_step(_entity_step(field_class.type_), flexible, 1)
    if isinstance(field_class, EntityField):
        inner = _entity_step(field_class.type_)
        if tag or not is_optional(field):
            return inner
        return _nullable_entity_step(inner)
    kafka_type = get_schema_field_type(field)
    primitive = _primitive_step(kafka_type, flexible and not (header and field.name == "client_id"))
    if isinstance(field_class, PrimitiveTupleField):
        return _array_step(primitive, flexible, _FIXED.get(kafka_type, 1))
    return primitive


def _primitive_step(kafka_type: str, flexible: bool) -> Step:
    size = _FIXED.get(kafka_type)
    if size is not None:
        return lambda data, position: _skip(data, position, size)
    if kafka_type not in ("string", "bytes", "records"):
        raise TypeError(f"no length rule for Kafka type {kafka_type!r}")
    if flexible:
        def compact(data: bytes, position: int) -> int:
            length, position = _uvarint(data, position)
            return _skip(data, position, max(length - 1, 0))
        return compact
    prefix = 2 if kafka_type == "string" else 4

    def legacy(data: bytes, position: int) -> int:
        length, position = _int(data, position, prefix)
        return _skip(data, position, max(length, 0))
    return legacy


def _array_step(element: Step, flexible: bool, element_bytes: int) -> Step:
    def read(data: bytes, position: int) -> int:
        if flexible:
            count, position = _uvarint(data, position)
            count -= 1  # 0: null
        else:
            count, position = _int(data, position, 4)
        if count <= 0:
            return position
        if count * element_bytes > len(data) - position:
            raise ArrayTooLong(f"an array claims {count} elements with "
                               f"{len(data) - position} bytes left")
        for _ in range(count):
            position = element(data, position)
        return position
    return read


def _nullable_entity_step(inner: Step) -> Step:
    def read(data: bytes, position: int) -> int:
        marker, position = _int(data, position, 1)
        return position if marker < 0 else inner(data, position)
    return read
