"""Counting the Kafka requests a server answers, per API and error, in its metrics.

:func:`counted` (an ``async def`` handler) and :func:`run_counted` (a plain
function) run a request's handler for the connection and count the request
in ``ServerState.metrics`` once its response is known: the API's name
(``Produce``, ``ApiVersions``... as Kafka names them) and each error code the
response carries, at its top level or for any topic or partition, as Kafka's
own name (``UNKNOWN_TOPIC_OR_PARTITION``), once per response.

Where the error codes come from: a response built as a kio entity is walked
(the fields Kafka's schemas type ``error_code``, in every nested structure
that can hold one; the walk of each entity class is planned once). A handler
that writes its response frame itself (Produce, Fetch: see
``_hot_responses``) says which codes it wrote with :func:`note_frame_errors`.
A handler that raises counts as ``UNKNOWN_SERVER_ERROR`` (the connection then
closes).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import typing
from collections.abc import Awaitable, Callable, Iterable
from functools import cache

from kio.schema.errors import ErrorCode

from mqlog.server.kafka._codec import Entity, Request
from mqlog.server.kafka._context import Later, ServerState

#: The error codes the handler of the current request wrote into its own frame
#: (set per request by :func:`counted`; None outside a request).
_FRAME_ERRORS: contextvars.ContextVar[set[int] | None] = contextvars.ContextVar(
    "mqlog_kafka_frame_errors", default=None)

_UNKNOWN_SERVER_ERROR = ErrorCode.unknown_server_error.value


async def counted(handler: Callable[[ServerState, Request], Awaitable[Entity]],
                  server: ServerState, request: Request) -> Entity:
    """``await handler(server, request)`` (an ``async def`` handler, in the
    request's own task), counting the request once its response is known (a
    :class:`Later`'s when its future resolves)."""
    frame_errors: set[int] = set()
    _FRAME_ERRORS.set(frame_errors)  # this request's task only: each runs in its own
    try:
        body = await handler(server, request)
    except Exception:
        _count(server, request, {_UNKNOWN_SERVER_ERROR})
        raise
    _count_when_answered(server, request, body, frame_errors)
    return body


def run_counted(handler: Callable[[ServerState, Request], Entity | Later],
                server: ServerState, request: Request) -> Entity | Later:
    """``handler(server, request)`` (a plain-function handler, called in the
    connection's reader), counted as :func:`counted` does. The frame errors of
    this request are set only during the call: what the handler schedules for
    later (a task, a future's callback) copies the context then, so its notes
    still reach this request's count."""
    frame_errors: set[int] = set()
    token = _FRAME_ERRORS.set(frame_errors)
    try:
        body = handler(server, request)
    except Exception:
        _count(server, request, {_UNKNOWN_SERVER_ERROR})
        raise
    finally:
        _FRAME_ERRORS.reset(token)
    _count_when_answered(server, request, body, frame_errors)
    return body


def _count_when_answered(server: ServerState, request: Request, body: Entity | Later,
                         frame_errors: set[int]) -> None:
    if isinstance(body, Later):
        body.future.add_done_callback(lambda future: _count(
            server, request, _later_errors(future, frame_errors)))
    else:
        _count(server, request, _errors(body, frame_errors))


def note_frame_errors(codes: Iterable[int]) -> None:
    """For a handler that writes its response frame itself: the error codes in
    it (0, no error, is ignored). Outside a counted request, does nothing."""
    found = _FRAME_ERRORS.get()
    if found is not None:
        found.update(codes)


def _errors(body: Entity, frame_errors: set[int]) -> set[int]:
    """The error codes of a response: a kio entity's, else (a frame the handler
    wrote, or no response) those it noted."""
    if body is None or isinstance(body, bytes):
        return frame_errors
    codes: set[int] = set()
    _collect_errors(body, codes)
    return codes


def _later_errors(future: asyncio.Future[Entity], frame_errors: set[int]) -> set[int]:
    """The error codes of a :class:`Later`'s response: a server error if it failed,
    none if it was cancelled (the connection closed first)."""
    if future.cancelled():
        return set()
    if future.exception() is not None:
        return {_UNKNOWN_SERVER_ERROR}
    return _errors(future.result(), frame_errors)


def _count(server: ServerState, request: Request, codes: set[int]) -> None:
    server.metrics.record_kafka_request(api_name(request.api_key, type(request.body)),
                                        [error_name(code) for code in codes if code])


def api_name(api_key: int, request_type: type) -> str:
    """Kafka's name of an API (``Produce``), from its request class (``ProduceRequest``)."""
    name = _API_NAMES.get(api_key)
    if name is None:
        name = _API_NAMES[api_key] = request_type.__name__.removesuffix("Request")
    return name


#: API key -> its name (every version's request class has the same name).
_API_NAMES: dict[int, str] = {}


@cache
def error_name(code: int) -> str:
    """Kafka's name of an error code (``UNKNOWN_TOPIC_OR_PARTITION``); a code kio does
    not know by its number."""
    try:
        return ErrorCode(code).name.upper()
    except ValueError:
        return str(code)


def _collect_errors(entity: Entity, codes: set[int]) -> None:
    """Add every error code in ``entity`` (a kio entity) and its nested entities."""
    error_fields, nested_fields = _plan(type(entity))
    for name in error_fields:
        codes.add(int(getattr(entity, name)))
    for name in nested_fields:
        value = getattr(entity, name)
        if isinstance(value, tuple):
            for item in value:
                _collect_errors(item, codes)
        elif value is not None:
            _collect_errors(value, codes)


def _plan(entity_type: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The fields of a kio entity class that hold an error code, and those that
    hold nested entities (one, or a tuple of them) that can hold one."""
    plan = _PLANS.get(entity_type)
    if plan is None:
        hints = typing.get_type_hints(entity_type)
        errors = []
        nested = []
        for field in dataclasses.fields(entity_type):
            kind = field.metadata.get("kafka_type")
            if kind == "error_code":
                errors.append(field.name)
            elif kind is None:
                child = _entity_type(hints[field.name])
                if child is not None and any(_plan(child)):
                    nested.append(field.name)
        plan = _PLANS[entity_type] = (tuple(errors), tuple(nested))
    return plan


#: Entity class -> its plan (kio's classes are generated once; the walk of each
#: is worked out on first use).
_PLANS: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _entity_type(hint: object) -> type | None:
    """The entity class of a nested field's type: ``X``, ``X | None`` or
    ``tuple[X, ...]``."""
    for candidate in (hint, *typing.get_args(hint)):
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            return candidate
    return None
