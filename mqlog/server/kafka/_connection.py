"""One client connection: read request frames, run them, answer in order.

Frames are a 4-byte big-endian size and that many bytes. The reader reads
one frame at a time and decodes it. A request of a ``concurrent`` API
starts once every earlier non-concurrent request has finished; any other
request starts once every earlier request has finished (see ``_apis``). A
plain-function handler (Produce, Fetch: see ``_context``) whose turn has come
runs at once in the reader, without a task; an ``async def`` handler, or one
whose turn has not come, runs as a task that first waits for the requests
before it. Answers wait in a queue in request order; whenever the one at
its head is ready, it and every ready one behind it are written in one
write, once per event loop iteration (one system call for a burst of
pipelined responses), so responses always leave in request order (Kafka's
per-connection guarantee) however the handlers interleave. Produce with
``acks=0`` gets no response, whatever its handler returns, and neither does
a request whose handler returns None.

Bounds (``KafkaLimits``): at most ``max_in_flight_per_connection`` requests
read and not answered, and at most ``max_waiting_per_connection`` answers
waiting on a ``Later(..., waiting=True)`` (a Produce waiting only for its
flush: it holds its per-partition results, not its request), so that a
producer keeps appending while a flush runs and the next flush covers all
it sent meanwhile (the reader waits while either count is at its bound);
no request is read while the socket's write buffer is over its high-water
mark (a client that does not read its answers stops being read), and the
reader lets the event loop run after every ``READS_PER_TURN`` requests, so
one busy connection does not hold up the others; a frame of
at most ``max_request_bytes`` (a bigger size closes the connection before
its body is read), ``idle_timeout_s`` without a request and nothing in
flight closes it.

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
traceback and closes this connection too, once the answers before it are
written. Nothing else is affected. The
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
import collections
import logging
import struct

from mqlog.server.kafka._api_versions import API_KEY as API_VERSIONS
from mqlog.server.kafka._api_versions import unsupported_version_frame
from mqlog.server.kafka._apis import Api, ApiTable
from mqlog.server.kafka._codec import (
    MalformedRequestError,
    Request,
    decode_request,
    encode_response,
    peek_prefix,
)
from mqlog.server.kafka._context import CLIENT_ADDRESS, Later, ServerState
from mqlog.server.kafka._limits import KafkaLimits
from mqlog.server.kafka._request_metrics import counted, run_counted
from mqlog.server.kafka._sasl import SESSION, SaslSession, allowed_before_auth

_log = logging.getLogger("mqlog.server.kafka")
_SIZE = struct.Struct(">i")
PRODUCE = 0
#: Requests the reader starts before it lets the event loop run once: frames
#: already buffered are read without a pause, and up to
#: ``max_waiting_per_connection`` produces may be read in a row, so without
#: it one busy producer would hold up every other connection (1,024 appends
#: are about 50 ms).
READS_PER_TURN = 32


class BadRequest(Exception):
    """Why a connection is closed because of what its client sent."""


class _Waiting:
    """An answer that was not ready when its request was read: ``future``
    resolves to the handler's response (or to a :class:`Later`, whose future
    then takes its place). ``waiting``: it counts against
    ``max_waiting_per_connection``, and ``request`` is its header only."""

    __slots__ = ("request", "future", "silent", "waiting")

    def __init__(self, request: Request, future: asyncio.Future[object]) -> None:
        self.request = request
        self.future = future
        self.silent = _silent(request)
        self.waiting = False


#: An answer in the queue: the response frame, None (no response is due), or
#: one still being made.
Answer = bytes | None | _Waiting


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
        self._answers: collections.deque[Answer] = collections.deque()  # in request order
        self._in_flight = 0  # requests read and not answered, but the waiting ones
        self._waiting = 0  # answers of Later(..., waiting=True) not written yet
        self._room: asyncio.Future[None] | None = None  # the reader waits on it for room
        self._barrier: asyncio.Task[object] | None = None  # the last non-concurrent task
        self._since_barrier: list[asyncio.Task[object]] = []  # concurrent tasks after it
        self._reading: asyncio.Task[None] | None = None
        self._stopped = False  # no more requests are read
        self._reading_ended = False
        self._loop = asyncio.get_running_loop()
        self._write_due = False  # a write of the ready answers is scheduled
        self._finished = self._loop.create_future()  # every answer written, or abandoned
        self._last_read = self._loop.time()
        self._idle_timer: asyncio.TimerHandle | None = None
        self._login = login  # None once logged in
        if login is not None:
            SESSION.set(login)  # in the connection's own task: its handler tasks see it

    async def serve(self) -> None:
        """Run the connection; returns once it is closed."""
        CLIENT_ADDRESS.set(self.peer.rsplit(":", 1)[0])  # this connection's tasks see it
        self._reading = reading = asyncio.create_task(self._read())
        self._idle_timer = self._loop.call_later(self.limits.idle_timeout_s, self._check_idle)
        try:
            if await self._read_until_done(reading) and self._answers:
                await self._finished
        finally:
            self._idle_timer.cancel()
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
            self._reading_ended = True
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
        transport = self.writer.transport
        started = 0
        while True:
            if transport.get_write_buffer_size():
                await self.writer.drain()  # returns at once below the high-water mark
            frame = await self._read_frame()
            if frame is None:
                return
            while (self._in_flight >= self.limits.max_in_flight_per_connection
                   or self._waiting >= self.limits.max_waiting_per_connection):
                self._room = self._loop.create_future()
                await self._room
            self._in_flight += 1
            self._start(frame)
            started += 1
            if started % READS_PER_TURN == 0:
                await asyncio.sleep(0)  # let the other connections and the writes run

    def _check_idle(self) -> None:
        """The idle timer: stop reading once nothing came for ``idle_timeout_s``
        and nothing is in flight, else look again when that may be true. One
        timer per connection rather than a timeout around every read: a read
        under ``wait_for`` costs a task and a timer per request."""
        idle_s = self._loop.time() - self._last_read
        if idle_s >= self.limits.idle_timeout_s and not self._answers:
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
                self._queue(unsupported_version_frame(self.table, correlation))
                return
            what = "unknown API key" if api is None else "unsupported version of API key"
            raise BadRequest(f"{what} {api_key} (v{api_version})")
        try:
            request = decode_request(frame)
        except MalformedRequestError as error:
            raise BadRequest(f"malformed request: {error}") from None
        if api.immediate and self._may_start_now(api.concurrent):
            self._run_now(api, request)
        else:
            self._run_later(api, request)
        if login_step:
            self._watch_login(self._answers[-1])

    def _may_start_now(self, concurrent: bool) -> bool:
        """Whether every request this one waits for has finished (forgetting the
        finished ones)."""
        if self._barrier is not None:
            if not self._barrier.done():
                return False
            self._barrier = None
        if self._since_barrier and not concurrent:
            if not all(task.done() for task in self._since_barrier):
                return False
            self._since_barrier = []
        return True

    def _run_now(self, api: Api, request: Request) -> None:
        """Run a plain-function handler whose turn has come, in the reader."""
        try:
            body = run_counted(api.handler, self.server, request)
        except Exception as error:  # a server bug: answered as a failed answer, in order
            failed = self._loop.create_future()
            failed.set_exception(error)
            self._queue(_Waiting(request, failed))
            return
        if isinstance(body, Later):
            answer = _Waiting(request, body.future)
            if body.waiting:
                self._now_waiting(answer)
            self._queue(answer)
            return
        try:
            self._queue(_encode(request, body, _silent(request)))
        except Exception as error:
            failed = self._loop.create_future()
            failed.set_exception(error)
            self._queue(_Waiting(request, failed))

    def _run_later(self, api: Api, request: Request) -> None:
        """Run the handler in a task, once the requests it waits for finished."""
        after = [] if self._barrier is None else [self._barrier]
        if not api.concurrent:
            after += self._since_barrier
        task = asyncio.create_task(self._run(api, request, after))
        if api.concurrent:
            self._since_barrier = [done for done in self._since_barrier if not done.done()]
            self._since_barrier.append(task)
        else:
            self._barrier, self._since_barrier = task, []
        self._queue(_Waiting(request, task))

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

    def _watch_login(self, answer: Answer) -> None:
        """Check the login once the login step answered by ``answer`` has run."""
        if isinstance(answer, _Waiting) and not answer.future.done():
            answer.future.add_done_callback(self._close_if_login_failed)
        else:
            self._close_if_login_failed()

    def _close_if_login_failed(self, _done: object = None) -> None:
        """After a login step's handler: once the login has failed, read no more
        (the answers queued, this step's among them, are still written)."""
        if self._login is not None and self._login.failed:
            _log.warning("closing connection from %s: authentication failed", self.peer)
            self.stop_reading()

    async def _run(self, api: Api, request: Request, after: list[asyncio.Task[object]]
                   ) -> object:
        """The handler's response to ``request``, once the requests in ``after``
        have finished."""
        pending = [task for task in after if not task.done()]
        if pending:
            await asyncio.wait(pending)
        if api.immediate:
            return run_counted(api.handler, self.server, request)
        return await counted(api.handler, self.server, request)

    # -- answering --------------------------------------------------------------------

    def _queue(self, answer: Answer) -> None:
        """Queue ``answer`` behind the others; write it as soon as it and every
        answer before it are ready."""
        self._answers.append(answer)
        if isinstance(answer, _Waiting):
            answer.future.add_done_callback(self._schedule_write)
        elif len(self._answers) == 1:
            self._schedule_write()

    def _schedule_write(self, _done: object = None) -> None:
        """Write the ready answers once this loop iteration's callbacks have run:
        answers made ready together leave in one write."""
        if not self._write_due:
            self._write_due = True
            self._loop.call_soon(self._write_ready)

    def _write_ready(self) -> None:
        """Write the answers at the head of the queue that are ready, in one
        write; the reader may go on if it waited for room."""
        self._write_due = False
        answers = self._answers
        frames: list[bytes] = []
        answered = False
        while answers:
            answer = answers[0]
            if isinstance(answer, _Waiting):
                future = answer.future
                if not future.done():
                    break
                try:
                    body = future.result()
                    if isinstance(body, Later):
                        answer.future = body.future
                        if body.waiting:
                            self._now_waiting(answer)
                        body.future.add_done_callback(self._schedule_write)
                        continue
                    frame = _encode(answer.request, body, answer.silent)
                    waiting = answer.waiting
                except (Exception, asyncio.CancelledError) as error:
                    if isinstance(error, asyncio.CancelledError):
                        _log.warning("closing connection from %s: an answer was cancelled",
                                     self.peer)
                    else:  # the handler (or its response's encoding) failed: a bug
                        _log.exception("a handler failed; closing connection from %s",
                                       self.peer)
                    self._write(frames)
                    self.stop_reading()
                    self._abandon()
                    return
            else:
                frame, waiting = answer, False
            answers.popleft()
            if waiting:
                self._waiting -= 1
            else:
                self._in_flight -= 1
            answered = True
            if frame is not None:
                frames.append(frame)
        self._write(frames)
        if answered and self._room is not None and not self._room.done():
            self._room.set_result(None)
        if not answers and self._reading_ended and not self._finished.done():
            self._finished.set_result(None)

    def _now_waiting(self, answer: _Waiting) -> None:
        """``answer``'s request is handled and waits on a ``Later(waiting=True)``:
        count it as waiting, not in flight, and keep only its header."""
        answer.waiting = True
        answer.request = answer.request._replace(body=None)
        self._in_flight -= 1
        self._waiting += 1
        if self._room is not None and not self._room.done():
            self._room.set_result(None)

    def _write(self, frames: list[bytes]) -> None:
        if not frames:
            return
        try:
            self.writer.write(b"".join(frames) if len(frames) > 1 else frames[0])
        except (ConnectionError, OSError) as error:
            _log.debug("connection from %s failed: %s", self.peer, error)
            self.stop_reading()
            self._abandon()

    def _abandon(self) -> None:
        """Cancel every answer not yet written (an answer that already failed is
        dropped: its connection is closing); the connection is finished."""
        while self._answers:
            answer = self._answers.popleft()
            if isinstance(answer, _Waiting):
                future = answer.future
                if future.done() and not future.cancelled():
                    future.exception()  # retrieved: asyncio does not log it again
                future.cancel()
        if not self._finished.done():
            self._finished.set_result(None)


def _silent(request: Request) -> bool:
    """Whether ``request`` gets no response whatever its handler returns
    (Produce with ``acks=0``)."""
    return request.api_key == PRODUCE and request.body.acks == 0


def _encode(request: Request, body: object, silent: bool) -> bytes | None:
    """The response frame of ``body`` (None: no response is due; bytes: the
    frame, written by the handler itself)."""
    if body is None or silent:
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
