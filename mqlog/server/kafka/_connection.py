"""One client connection: read request frames, run them, answer in order.

Frames are a 4-byte big-endian size and that many bytes. The reader reads
one frame at a time, decodes it and starts its handler as a task; the
responder awaits those tasks in the order the requests came and writes
their responses, so responses always leave in request order (Kafka's
per-connection guarantee) however the handlers interleave. A request of a
``concurrent`` API starts once every earlier non-concurrent request has
finished; any other request starts once every earlier request has finished
(see ``_apis``). Produce with ``acks=0`` gets no response, whatever its
handler returns, and neither does a request whose handler returns None.

Bounds (``KafkaLimits``): at most ``max_in_flight_per_connection`` requests
read and not answered (the reader waits for the oldest answer first), a
frame of at most ``max_request_bytes`` (a bigger size closes the connection
before its body is read), ``idle_timeout_s`` without a request and nothing
in flight closes it.

A handler returns its response as a kio entity, or as the whole response
frame (``bytes``: see ``_hot_responses``); each request is counted in the
server's metrics as its handler answers (``_request_metrics``). It may also return
:class:`~mqlog.server.kafka._context.Later`: its
request counts as finished for the ordering above (the requests behind it
start), and its response is written, still in order, once the Later's
future resolves.

A bad request (malformed, truncated, oversized, an API or version not
registered) closes this connection at once with one logged line naming the
peer and the reason; an exception escaping a handler is logged with its
traceback and closes this connection too. Nothing else is affected. The
one exception is an ApiVersions request of a version the server does not
know, which is answered per KIP-511 (see ``_api_versions``).

Login (a connection given a :class:`~mqlog.server.kafka._sasl.SaslSession`):
until the session is authenticated, a request other than ApiVersions,
SaslHandshake and SaslAuthenticate closes the connection (one logged line,
nothing answered), and a failed login closes it once its response is
written. Once logged in, the connection forgets the session: a connection
that needs no login, or has logged in, pays one attribute test per request.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any

from mqlog.server.kafka._api_versions import API_KEY as API_VERSIONS
from mqlog.server.kafka._api_versions import unsupported_version_frame
from mqlog.server.kafka._apis import ApiTable
from mqlog.server.kafka._codec import (
    MalformedRequestError,
    Request,
    decode_request,
    encode_response,
    peek_prefix,
)
from mqlog.server.kafka._context import CLIENT_ADDRESS, Later, ServerState
from mqlog.server.kafka._limits import KafkaLimits
from mqlog.server.kafka._request_metrics import counted
from mqlog.server.kafka._sasl import SESSION, SaslSession, allowed_before_auth

_log = logging.getLogger("mqlog.server.kafka")
_SIZE = struct.Struct(">i")
PRODUCE = 0

#: A request's answer: its response frame, None (no response is due), or the
#: future of a response that a :class:`Later` promised.
Answer = asyncio.Task["bytes | None | asyncio.Future[bytes | None]"]
#: "The queue of answers is empty for now" (None in it is the end marker).
_NONE_YET: Any = object()


class BadRequest(Exception):
    """Why a connection is closed because of what its client sent."""


class Connection:
    """Serves one client connection until it closes, is stopped or misbehaves.
    ``login``: the SASL session the client must authenticate through first
    (None: no login needed)."""

    def __init__(self, server: ServerState, table: ApiTable, limits: KafkaLimits,
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 login: SaslSession | None = None) -> None:
        self.server = server
        self.table = table
        self.limits = limits
        self.reader = reader
        self.writer = writer
        self.peer = _peer_name(writer)
        self._answers: asyncio.Queue[Answer | None] = asyncio.Queue()
        self._slots = asyncio.Semaphore(limits.max_in_flight_per_connection)
        self._in_flight = 0
        self._barrier: list[Answer] = []  # the last non-concurrent request, if any
        self._since_barrier: list[Answer] = []
        self._reading: asyncio.Task[None] | None = None
        self._stopped = False
        self._loop = asyncio.get_running_loop()
        self._last_read = self._loop.time()
        self._idle_timer: asyncio.TimerHandle | None = None
        self._login = login  # None once logged in
        if login is not None:
            SESSION.set(login)  # in the connection's own task: its handler tasks see it

    async def serve(self) -> None:
        """Run the connection; returns once it is closed."""
        CLIENT_ADDRESS.set(self.peer.rsplit(":", 1)[0])  # this connection's tasks see it
        responder = asyncio.create_task(self._respond())
        self._reading = reading = asyncio.create_task(self._read())
        self._idle_timer = self._loop.call_later(self.limits.idle_timeout_s, self._check_idle)
        try:
            if await self._read_until_done(reading):
                await responder
        finally:
            self._idle_timer.cancel()
            responder.cancel()
            self._abandon()
            self.writer.close()

    async def _read_until_done(self, reading: asyncio.Task[None]) -> bool:
        """Wait for the reader to end; True when the answers in flight are still
        to be written (the peer closed, or the server stops reading)."""
        try:
            await reading
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not self._stopped or (task is not None and task.cancelling()):
                raise  # the connection itself is cancelled, not only its reader
        except BadRequest as reason:
            _log.warning("closing connection from %s: %s", self.peer, reason)
            return False
        except (ConnectionError, OSError) as error:
            _log.debug("connection from %s failed: %s", self.peer, error)
            return False
        except Exception:
            _log.exception("reading requests failed; closing connection from %s", self.peer)
            return False
        finally:
            self._answers.put_nowait(None)
        return True

    def stop_reading(self) -> None:
        """Read no more requests; those in flight are still answered."""
        self._stopped = True
        if self._reading is not None:
            self._reading.cancel()

    def abort(self) -> None:
        """Close now, answering nothing more."""
        self._abandon()
        self.writer.transport.abort()

    # -- reading ---------------------------------------------------------------------

    async def _read(self) -> None:
        """Read and start requests until the peer closes (returns) or sends
        something bad (raises BadRequest)."""
        while True:
            frame = await self._read_frame()
            if frame is None:
                return
            await self._slots.acquire()
            self._in_flight += 1
            self._start(frame)

    def _check_idle(self) -> None:
        """The idle timer: stop reading once nothing came for ``idle_timeout_s``
        and nothing is in flight, else look again when that may be true. One
        timer per connection rather than a timeout around every read: a read
        under ``wait_for`` costs a task and a timer per request."""
        idle_s = self._loop.time() - self._last_read
        if idle_s >= self.limits.idle_timeout_s and self._in_flight == 0:
            _log.info("closing connection from %s: idle for %gs", self.peer,
                      self.limits.idle_timeout_s)
            self.stop_reading()
            return
        wait_s = max(self.limits.idle_timeout_s - idle_s, 0.0) or self.limits.idle_timeout_s
        self._idle_timer = self._loop.call_later(wait_s, self._check_idle)

    async def _read_frame(self) -> bytes | None:
        """The next frame's bytes, or None at a clean end of the stream."""
        try:
            prefix = await self.reader.readexactly(_SIZE.size)
        except asyncio.IncompleteReadError as error:
            if error.partial:
                raise BadRequest(
                    f"truncated request: {len(error.partial)} bytes of a size prefix"
                ) from None
            return None
        self._last_read = self._loop.time()
        (size,) = _SIZE.unpack(prefix)
        if size < 0 or size > self.limits.max_request_bytes:
            raise BadRequest(f"request size {size} is outside 0..{self.limits.max_request_bytes}"
                             f" (max_request_bytes)")
        try:
            return await self.reader.readexactly(size)
        except asyncio.IncompleteReadError as error:
            raise BadRequest(
                f"truncated request: {len(error.partial)} of {size} bytes") from None

    def _start(self, frame: bytes) -> None:
        """Decode ``frame`` and queue its answer (or raise BadRequest). The API
        and version are checked before the body is decoded."""
        try:
            api_key, api_version, correlation = peek_prefix(frame)
        except MalformedRequestError as error:
            raise BadRequest(f"malformed request: {error}") from None
        login_step = self._login is not None and self._check_login(api_key)
        api = self.table.get(api_key)
        if api is None or not api.supports(api_version):
            if api_key == API_VERSIONS:  # KIP-511
                self._queue_frame(unsupported_version_frame(self.table, correlation))
                return
            what = "unknown API key" if api is None else "unsupported version of API key"
            raise BadRequest(f"{what} {api_key} (v{api_version})")
        try:
            request = decode_request(frame)
        except MalformedRequestError as error:
            raise BadRequest(f"malformed request: {error}") from None
        after = list(self._barrier) if api.concurrent else self._barrier + self._since_barrier
        task = asyncio.create_task(self._run(request, after))
        if login_step:
            task.add_done_callback(self._close_if_login_failed)
        if api.concurrent:
            self._since_barrier.append(task)
        else:
            self._barrier, self._since_barrier = [task], []
        self._answers.put_nowait(task)

    def _check_login(self, api_key: int) -> bool:
        """Before login: BadRequest for a request not allowed yet; True for a
        login step (SaslHandshake, SaslAuthenticate). Once logged in, forget the
        session and allow everything."""
        login = self._login
        assert login is not None
        if login.authenticated:
            self._login = None
            return False
        if not allowed_before_auth(api_key):
            raise BadRequest(f"API key {api_key} before authentication")
        return api_key != API_VERSIONS

    def _close_if_login_failed(self, task: Answer) -> None:
        """After a login step's handler: once the login has failed, read no more
        (the answers queued, this step's among them, are still written)."""
        if self._login is not None and self._login.failed:
            _log.warning("closing connection from %s: authentication failed", self.peer)
            self.stop_reading()

    def _queue_frame(self, frame: bytes) -> None:
        async def ready() -> bytes:
            return frame
        self._answers.put_nowait(asyncio.create_task(ready()))

    async def _run(self, request: Request, after: list[Answer]
                   ) -> bytes | None | asyncio.Future[bytes | None]:
        """The response frame of ``request`` (None: no response is due), or the
        future of it when the handler answered :class:`Later`."""
        pending = [answer for answer in after if not answer.done()]
        if pending:
            await asyncio.wait(pending)
        api = self.table.get(request.api_key)
        assert api is not None
        body = await counted(api.handler, self.server, request)
        if isinstance(body, Later):
            return asyncio.ensure_future(self._encode_later(request, body))
        return _encode(request, body)

    @staticmethod
    async def _encode_later(request: Request, later: Later) -> bytes | None:
        return _encode(request, await later.future)

    # -- answering --------------------------------------------------------------------

    async def _respond(self) -> None:
        """Write the answers in request order until the end marker (None).
        Answers ready one after another go out in one write: one system call
        for a burst of pipelined responses."""
        answer = await self._answers.get()
        while answer is not None:
            frames: list[bytes] = []
            answered = 0
            while True:  # this answer, then the next ones while they are ready
                try:
                    frame = await answer
                    if isinstance(frame, asyncio.Future):
                        frame = await frame
                except asyncio.CancelledError:
                    raise
                except Exception:
                    _log.exception("a handler failed; closing connection from %s", self.peer)
                    self.stop_reading()
                    self._abandon()
                    return
                if frame is not None:
                    frames.append(frame)
                answered += 1
                following = self._answers.get_nowait() if not self._answers.empty() else _NONE_YET
                if following is None or following is _NONE_YET or not _ready(following):
                    break
                answer = following
            if frames:
                try:
                    self.writer.write(b"".join(frames) if len(frames) > 1 else frames[0])
                    await self.writer.drain()
                except (ConnectionError, OSError) as error:
                    _log.debug("connection from %s failed: %s", self.peer, error)
                    self.stop_reading()
                    self._abandon()
                    return
            self._in_flight -= answered
            for _ in range(answered):
                self._slots.release()
            answer = await self._answers.get() if following is _NONE_YET else following

    def _abandon(self) -> None:
        """Cancel every answer not yet written (an answer that already failed is
        dropped: its connection is closing)."""
        while not self._answers.empty():
            answer = self._answers.get_nowait()
            if answer is None:
                continue
            if answer.done() and not answer.cancelled():
                answer.exception()  # retrieved: asyncio does not log it again
            answer.cancel()


def _ready(answer: Answer) -> bool:
    """Whether ``answer`` can be written without waiting."""
    if not answer.done() or answer.cancelled() or answer.exception() is not None:
        return answer.done()
    result = answer.result()
    return not isinstance(result, asyncio.Future) or result.done()


def _encode(request: Request, body: object) -> bytes | None:
    """The response frame of ``body`` (None: no response is due; bytes: the
    frame, written by the handler itself)."""
    if body is None or (request.api_key == PRODUCE and request.body.acks == 0):
        return None
    if isinstance(body, bytes):
        return body
    return encode_response(request.api_key, request.api_version, request.correlation_id, body)


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(peer)
