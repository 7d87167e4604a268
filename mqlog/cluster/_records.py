"""librdkafka's messages as mqlog's records and messages.

The consumer's hot path: :func:`as_messages` turns each fetched message into a
:class:`~mqlog.Message` without a Python call per record: the object is a
:class:`FetchedMessage`, made by a C call, whose seven slots are stored in the
loop (what ``Message.__init__`` does, less a frame per record). And it lets go
of each librdkafka message once converted, so that a batch never holds both
forms of its records: the interpreter's cyclic garbage collector counts every
one of these objects, and with both alive it ran about twice as often,
promoting live batches into its oldest generation and scanning that whole
generation every few thousand records (measured: a third of the CPU a
``poll`` spent per record).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NoReturn

from mqlog.logstore import Message

#: Headers of a message that has none: immutable and shared, as on a log directory.
NO_HEADERS: Mapping[str, bytes] = MappingProxyType({})


class FetchedMessage(Message):
    """A :class:`~mqlog.Message` read from a cluster: the same slots, attributes,
    equality and repr; only its construction differs (no ``__init__`` arguments:
    :func:`as_messages` stores the slots)."""

    __slots__ = ()
    __init__ = object.__init__  # FetchedMessage() calls no Python


def as_messages(fetched: list[Any],
                fail: Callable[[Any, Any], NoReturn]) -> list[Message]:
    """Fetched messages (``confluent_kafka.Message``) as :class:`~mqlog.Message`
    objects, in order; ``fetched`` is emptied. Values and keys are bytes (a null
    value, Kafka's tombstone, reads as ``b""`` as mqlog stores it); headers a
    dict (a name repeated in Kafka keeps its last value). ``fail(error, message)`` raises for
    the first message that carries an error (librdkafka's accessors are typed
    optional: a fetched message without an error has every field)."""
    out: list[Message] = []
    append = out.append
    fetched.reverse()
    take = fetched.pop
    while fetched:
        message = take()  # the list's reference dropped: freed after this round
        error = message.error()
        if error is not None:
            fail(error, message)
        record = FetchedMessage()
        value = message.value()
        record.value = b"" if value is None else value
        record.key = message.key()
        headers = message.headers()
        record.headers = dict(headers) if headers else NO_HEADERS
        record.timestamp = message.timestamp()[1]
        record.offset = message.offset()
        record.topic = message.topic()
        record.partition = message.partition()
        append(record)
    return out


def as_message(message: Any) -> Message:
    """One fetched message (no error) as a :class:`~mqlog.Message`, as :func:`as_messages`."""
    headers = message.headers()
    value = message.value()
    return Message(b"" if value is None else value, message.key(),
                   dict(headers) if headers else NO_HEADERS, message.timestamp()[1],
                   message.offset(), message.topic(), message.partition())
