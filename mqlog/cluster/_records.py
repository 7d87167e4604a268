"""librdkafka's messages as mqlog's records and messages."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from mqlog.logstore import Message

#: Headers of a message that has none: immutable and shared, as on a log directory.
NO_HEADERS: Mapping[str, bytes] = MappingProxyType({})


def as_message(message: Any) -> Message:
    """A fetched message (no error) as a :class:`~mqlog.Message`. Values and keys
    are bytes (a null value, Kafka's tombstone, reads as ``b""`` as mqlog stores
    it); headers a dict (a name repeated in Kafka keeps its last value).
    ``message`` is a ``confluent_kafka.Message``, whose accessors are typed
    optional: a fetched message without an error has every field."""
    headers = message.headers()
    value = message.value()
    return Message(b"" if value is None else value, message.key(),
                   dict(headers) if headers else NO_HEADERS, message.timestamp()[1],
                   message.offset(), message.topic(), message.partition())
