"""The queue API's hot requests, answered without FastAPI's per-request layers.

A pure ASGI middleware in front of the routes. It answers the three requests
a queue's clients repeat, in their plain forms:

- ``POST /queues/{topic}/messages`` whose JSON body is ``{"message": "..."}``
  or ``{"messages": [{"message": "..."}, ...]}`` (no other field);
- ``GET /queues/{topic}/messages`` with ``group`` and any of ``batch_size``,
  ``visibility`` and ``wait=0`` as plain numbers (no long poll);
- ``DELETE /queues/{topic}/messages/{receipt_handle}``;

by calling what the routes call (``_queue_api.send``, ``receive``, ``delete``),
so the answers and the errors are the routes' own. FastAPI's routing,
dependency resolution and validation took most of such a request's CPU.

Invariant: a request is answered here only when the route would have accepted
it as it is (authorized, the body or the query in the route's schema), and the
answer is the one the route gives; anything else (other fields, a long poll,
a body that is not JSON, a missing token) goes on to the routes unchanged,
with its body handed on. ``scope["route"]`` is set to the route answered for,
so the request metrics count it under the route's template.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mqlog.errors import MqlogError
from mqlog.server.http import _queue_api
from mqlog.server.http._auth import authorized
from mqlog.server.http._errors import ApiError, error_response, status_and_code

_NUMBER = re.compile(r"\d+(\.\d+)?\Z")
#: What a handler returns: None once it answered, else the ``receive`` to
#: hand the request on with (the original, or one replaying a body it read).
_Outcome = Receive | None
_Handler = Callable[[FastAPI, list[str], Scope, Receive, Send], Awaitable[_Outcome]]


class QueueFastLane:
    """ASGI middleware answering the queue API's plain hot requests (see the module)."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api
        routes = {(method, route.path): route for route in _queue_api.router.routes
                  if isinstance(route, APIRoute) for method in route.methods or ()}
        messages = "/queues/{topic}/messages"
        #: (method, number of path segments) -> (handler, the route it stands for)
        self._handlers: dict[tuple[str, int], tuple[_Handler, APIRoute]] = {
            ("POST", 4): (_send, routes[("POST", messages)]),
            ("GET", 4): (_receive, routes[("GET", messages)]),
            ("DELETE", 5): (_delete, routes[("DELETE", messages + "/{receipt_handle}")]),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            parts = scope["path"].split("/")
            found = self._handlers.get((scope["method"], len(parts)))
            if (found is not None and parts[1] == "queues" and parts[3] == "messages"
                    and all(parts[2:]) and self._authorized(scope)):
                handler, route = found
                scope["route"] = route
                onward = await handler(self.api, parts, scope, receive, send)
                if onward is None:
                    return
                del scope["route"]
                receive = onward
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        given = _header(scope, b"authorization") or b""
        return authorized(given.decode("latin-1"), self.api.state.token)


async def _send(api: FastAPI, parts: list[str], scope: Scope, receive: Receive,
                send: Send) -> _Outcome:
    if _header(scope, b"content-type") != b"application/json":
        return receive
    body = await _body(receive)
    if body is None:
        return None  # the client left: nothing to answer
    items = _plain_messages(body)
    if items is None:
        return _replay(body, receive)
    await _answer(scope, receive, send, 201, lambda: _queue_api.send(api, parts[2], items))
    return None


async def _receive(api: FastAPI, parts: list[str], scope: Scope, receive: Receive,
                   send: Send) -> _Outcome:
    query = _plain_query(scope["query_string"])
    if query is None:
        return receive
    group, batch_size, visibility = query
    await _answer(scope, receive, send, 200, lambda: _queue_api.receive(
        api, parts[2], group, batch_size, 0.0, visibility, _stays))
    return None


async def _delete(api: FastAPI, parts: list[str], scope: Scope, receive: Receive,
                  send: Send) -> _Outcome:
    async def deleted() -> bytes:
        await _queue_api.delete(api, parts[2], parts[4])
        return b""

    await _answer(scope, receive, send, 204, deleted)
    return None


def _plain_messages(body: bytes) -> list[str] | None:
    """The message texts of a plain send body, or None for any other body."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or len(data) != 1:
        return None
    items = [data] if "message" in data else data.get("messages")
    if not isinstance(items, list) or not items:
        return None
    texts = []
    for item in items:
        if not isinstance(item, dict) or len(item) != 1:
            return None
        text = item.get("message")
        if not isinstance(text, str):
            return None
        texts.append(text)
    return texts


def _plain_query(query_string: bytes) -> tuple[str, int, float] | None:
    """(group, batch_size, visibility) of a plain receive's query, or None."""
    try:
        pairs = parse_qsl(query_string.decode("ascii"), keep_blank_values=True,
                          strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    query = dict(pairs)
    if len(query) != len(pairs) or "group" not in query or not query.keys() <= {
            "group", "batch_size", "visibility", "wait"}:
        return None
    batch_size = query.get("batch_size", "1")
    visibility = query.get("visibility", "30")
    wait = query.get("wait", "0")
    if not (batch_size.isdigit() and _NUMBER.match(visibility) and _NUMBER.match(wait)):
        return None
    seconds = float(visibility)
    if int(batch_size) < 1 or float(wait) != 0 or not 0 < seconds < math.inf:
        return None
    return query["group"], int(batch_size), seconds


async def _answer(scope: Scope, receive: Receive, send: Send, status: int,
                  call: Callable[[], Awaitable[bytes]]) -> None:
    """Send ``status`` with the JSON ``call()`` returns (none for 204), or the
    error response the routes give for the mqlog error or ApiError it raises."""
    try:
        body = await call()
    except ApiError as exc:
        await error_response(exc.status, exc.code, str(exc))(scope, receive, send)
        return
    except MqlogError as exc:
        await error_response(*status_and_code(exc), str(exc))(scope, receive, send)
        return
    headers = [] if status == 204 else [
        (b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _body(receive: Receive) -> bytes | None:
    """The whole request body; None if the client left first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` giving ``body`` (read already) first, then what ``receive`` gives."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            found: bytes = value
            return found
    return None


async def _stays() -> bool:
    """A client's disconnection, for a receive that never waits: never asked."""
    return False
