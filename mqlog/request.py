"""Request/reply over topics: ``Log.request`` and :class:`Responder`.

A request is a record on the request topic with two headers: ``reply-to``
(``<topic>/<partition>`` where the answer goes) and ``correlation-id`` (a
random id the answer repeats). Replies go to the internal topic
``__replies`` (8 partitions; a requester uses the partition of its process id),
which requesters read from the offset that was its end when they sent.
Responders are a queue group over the request topic, so any number of them
share the load and a request whose responder dies is answered by another one.

A handler that raises is answered too: the reply has an empty value and the headers
``error-type`` (the exception's class name) and ``error-message``; ``request``
raises :class:`~mqlog.errors.RemoteHandlerError` with them. Such a request is
acked, not retried: the requester is waiting, and decides whether to ask again.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from mqlog.consumer import QueueConsumer, QueueMessage, check_timeout
from mqlog.errors import LogClosedError, RemoteHandlerError, TopicExistsError, UnknownTopicError
from mqlog.headers import CORRELATION_ID, ERROR_MESSAGE, ERROR_TYPE, REPLY_TO
from mqlog.logstore import Engine, Message, Record

REPLIES_TOPIC = "__replies"
REPLIES_PARTITIONS = 8
#: How long ``serve`` waits for requests before it looks whether to stop.
SERVE_POLL_S = 0.1

Handler = Callable[[QueueMessage], "bytes | str | Record"]


def _ensure_replies(log: Engine) -> None:
    try:
        log.create_topic(REPLIES_TOPIC, REPLIES_PARTITIONS, internal=True, durability="none",
                         retention_ms=3600 * 1000)
    except TopicExistsError:
        pass


def request(log: Engine, topic: str, value: bytes | str, timeout: float, *,
            key: bytes | None = None, headers: dict | None = None) -> Message:
    """Send ``value`` to ``topic`` and wait up to ``timeout`` seconds for the reply
    (a Message on ``__replies``); raises TimeoutError if none comes, and
    RemoteHandlerError if the responder's handler raised. Bad input raises
    before anything is written."""
    if timeout is None:
        raise TypeError("timeout must be a number of seconds")
    check_timeout(timeout)
    partition = os.getpid() % REPLIES_PARTITIONS
    try:
        start = log.end_offset(REPLIES_TOPIC, partition)
    except UnknownTopicError:  # created below, once the request is written
        start = 0
    correlation = uuid.uuid4().hex.encode()
    merged = dict(headers or {})
    merged[REPLY_TO] = f"{REPLIES_TOPIC}/{partition}".encode()
    merged[CORRELATION_ID] = correlation
    payload = value.encode() if isinstance(value, str) else value
    log.append(topic, _request_partition(log, topic, correlation),
               [Record(payload, key, merged)])
    _ensure_replies(log)
    deadline = time.monotonic() + timeout
    offset = start
    while True:
        seen = log.append_counter()
        for message in log.partition(REPLIES_TOPIC, partition).read(offset, 500, None,
                                                                     messages=True):
            offset = message.offset + 1
            if message.headers.get(CORRELATION_ID) == correlation:
                return _unless_error(message)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no reply on {topic!r} within {timeout} s")
        log.wait_for_append(seen, remaining)


def _unless_error(reply: Message) -> Message:
    """The reply, or RemoteHandlerError if it reports that the handler raised."""
    type_name = reply.headers.get(ERROR_TYPE)
    if type_name is None:
        return reply
    message = reply.headers.get(ERROR_MESSAGE) or b""
    raise RemoteHandlerError(bytes(type_name).decode(errors="replace"),
                             bytes(message).decode(errors="replace"))


def _request_partition(log: Engine, topic: str, correlation: bytes) -> int:
    return int(correlation[:8], 16) % log.partition_count(topic)


class Responder:
    """Answers requests on ``topic`` with ``handler(message)`` (bytes, str or a
    Record to send back). A queue group (``group``) over the request topic: run
    as many responders as you like, in threads or processes."""

    def __init__(self, log: Engine, topic: str, handler: Handler, group: str = "responders",
                 **queue_options: Any) -> None:
        if not callable(handler):
            raise TypeError("handler must be callable(message) -> bytes, str or Record")
        self._log = log
        self._handler = handler
        self._queue = QueueConsumer(log, group, [topic], **queue_options)
        _ensure_replies(log)
        self._stop = threading.Event()
        #: Held by ``serve`` while it runs, so that ``close`` waits for it to end.
        self._serving = threading.RLock()

    def handle(self, timeout: float | None = 0.0) -> int:
        """Answer the requests that are there (waiting up to ``timeout`` for some);
        returns how many were answered. A handler that raises is answered with its
        error's type and message (see the module), and its request acked."""
        answered = 0
        for message in self._queue.receive(timeout=timeout):
            reply_to = message.headers.get(REPLY_TO)
            correlation = message.headers.get(CORRELATION_ID)
            if reply_to is None or correlation is None:
                message.ack()  # not a request: nothing to answer
                continue
            try:
                result = self._handler(message)
            except Exception as error:
                result = Record(b"", None, {ERROR_TYPE: type(error).__name__.encode(),
                                             ERROR_MESSAGE: str(error).encode()})
            if not isinstance(result, Record):
                result = Record(result.encode() if isinstance(result, str) else result)
            headers = dict(result.headers or {})
            headers[CORRELATION_ID] = correlation
            topic, _, partition = reply_to.decode().rpartition("/")
            self._log.append(topic, int(partition),
                             [Record(result.value, result.key, headers)])
            message.ack()
            answered += 1
        return answered

    def serve(self) -> None:
        """Answer requests until :meth:`stop` or :meth:`close` is called (from
        another thread); then returns, after answering the request in hand."""
        with self._serving:
            while not self._stop.is_set():
                try:
                    self.handle(timeout=SERVE_POLL_S)
                except LogClosedError:
                    if self._stop.is_set():
                        return  # closed meanwhile, e.g. by Log.close
                    raise

    def stop(self) -> None:
        """Make :meth:`serve` return once the request in hand is answered."""
        self._stop.set()

    def close(self) -> None:
        """Stop serving (waiting for a ``serve`` in another thread to return) and
        leave the queue group; idempotent."""
        self._stop.set()
        with self._serving:  # serve has returned (or never ran)
            self._queue.close()

    def __enter__(self) -> Responder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
