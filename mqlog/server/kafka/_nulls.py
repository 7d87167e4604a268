"""Nulls where a message's schema allows none, found in a decoded request.

kio's reader turns a length of -1 into None for every string and array,
whether or not the schema lets the field be null; Kafka's own parsers refuse
such a request. :func:`check_nulls` walks a decoded entity (nested entities
and array items included) and raises
:class:`~mqlog.server.kafka._codec.MalformedRequestError` at the first None
in a field, or array item, whose type is not ``... | None``; so handlers can
trust the types of the request they get. The walk plan of each entity class
is worked out once.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any

#: (field name, may be None, nested entity class or None, array items may be None)
_Step = tuple[str, bool, type | None, bool]


class NullFieldError(ValueError):
    """A field or array item is null where the schema allows no null."""


def check_nulls(entity: Any) -> None:
    """Raise NullFieldError naming the first field of ``entity`` (or of an entity
    inside it) that is None against its schema."""
    cls: type = type(entity)
    for name, nullable, nested, items_nullable in _plan(cls):
        value = getattr(entity, name)
        if value is None:
            if not nullable:
                raise NullFieldError(f"{type(entity).__name__}.{name} is null")
            continue
        if isinstance(value, tuple):
            for item in value:
                if item is None:
                    if not items_nullable:
                        raise NullFieldError(f"{type(entity).__name__}.{name} has a null item")
                elif nested is not None:
                    check_nulls(item)
        elif nested is not None:
            check_nulls(value)


@cache
def _plan(cls: type) -> tuple[_Step, ...]:
    steps = []
    for field in dataclasses.fields(cls):
        nullable, inner = _optional(field.type)
        items_nullable, element = False, None
        if typing.get_origin(inner) is tuple:
            items_nullable, element = _optional(typing.get_args(inner)[0])
        else:
            element = inner
        nested = element if isinstance(element, type) and dataclasses.is_dataclass(
            element) else None
        steps.append((field.name, nullable, nested, items_nullable))
    return tuple(steps)


def _optional(hint: Any) -> tuple[bool, Any]:
    """(whether ``hint`` admits None, ``hint`` without None)."""
    arguments = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in arguments:
        members = [member for member in arguments if member is not type(None)]
        return True, members[0] if len(members) == 1 else hint
    return False, hint
