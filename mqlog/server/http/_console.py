"""The web console: the page at ``/``, its files under ``/console/static/``,
and its two server-sent event streams.

- ``GET /console/events``: a ``snapshot`` event every second or so while
  watched (:class:`~mqlog.server.http._console_snapshot.ConsoleSnapshot`:
  topics with rates, groups with lag per partition, queue groups with their
  depth), ``failure`` events when sampling fails;
- ``GET /console/tail/{topic}``: ``records`` events (the newest records, then
  each new one).

The page and its files hold no data and need no token (the page asks for one
when a request is refused); the streams need the bearer token like every API
route. The page reads the streams with ``fetch`` (``EventSource`` cannot send
an ``Authorization`` header), so the token never goes into a URL. Browsing and
redriving dead letters use the log API's ``/dead-letters`` routes. None of these
routes is in the OpenAPI document: they serve a browser, not API clients.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, StreamingResponse

from mqlog.log import Log
from mqlog.server.http._auth import check_token
from mqlog.server.http._console_events import SnapshotHub, tail_records

router = APIRouter(include_in_schema=False)

#: The page's files, shipped inside the package.
STATIC_DIR = Path(__file__).with_name("console")
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
#: The files served under /console/static/ (a fixed set: no path is ever built
#: from the request).
_STATIC = {path.name: (path, _MEDIA_TYPES[path.suffix]) for path in STATIC_DIR.iterdir()
           if path.suffix in _MEDIA_TYPES}
#: The page runs only its own files: no inline script, nothing from elsewhere.
_PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
                 "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
_STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


@router.get("/")
async def page() -> FileResponse:
    """The console's page."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html",
                        headers=_PAGE_HEADERS)


@router.get("/console/static/{name}")
async def static_file(name: str) -> FileResponse:
    """One of the page's files."""
    found = _STATIC.get(name)
    if found is None:
        raise HTTPException(404, f"no console file {name!r}")
    path, media_type = found
    return FileResponse(path, media_type=media_type, headers=_PAGE_HEADERS)


@router.get("/console/events", dependencies=[Depends(check_token)])
async def events(request: Request) -> StreamingResponse:
    """Snapshots of the log as server-sent events, until the server stops."""
    hub = getattr(request.app.state, "console_hub", None)
    if hub is None:  # the first stream of this app
        hub = request.app.state.console_hub = SnapshotHub(_log_of(request),
                                                          request.app.state.stopping)
    return _stream(hub.events())


@router.get("/console/tail/{topic}", dependencies=[Depends(check_token)])
async def tail(request: Request, topic: str) -> StreamingResponse:
    """The newest records of ``topic``, then each new one, as server-sent events;
    404 (``unknown_topic``) if there is no such topic."""
    log = _log_of(request)
    log.describe_topic(topic)
    return _stream(tail_records(log, topic, request.app.state.stopping))


def _log_of(request: Request) -> Log:
    log: Log = request.app.state.log
    return log


def _stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers=_STREAM_HEADERS)
