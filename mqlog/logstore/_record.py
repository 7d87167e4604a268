"""The record type: what users append and what reads return."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

#: Headers of a record that has none: an immutable, shared empty mapping.
NO_HEADERS: Mapping[str, bytes] = MappingProxyType({})


class Record:
    """One record of a partition.

    Build one to append with a key, headers or an explicit timestamp::

        log.append("orders", 0, [Record(b"{...}", key=b"customer-7", headers={"v": b"2"})])

    Records returned by reads also carry ``offset`` (their position in the
    partition) and always have a ``timestamp`` (ms since the epoch) and a
    ``headers`` mapping (empty and read-only when the record has none).
    """

    __slots__ = ("value", "key", "headers", "timestamp", "offset")

    value: bytes
    key: bytes | None
    headers: Mapping[str, bytes] | None
    #: None on a record built to append until it is appended; set on records read.
    timestamp: int | None
    offset: int | None

    def __init__(
        self,
        value: bytes,
        key: bytes | None = None,
        headers: Mapping[str, bytes] | None = None,
        timestamp: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.value = value
        self.key = key
        self.headers = headers
        self.timestamp = timestamp
        self.offset = offset

    def __repr__(self) -> str:
        value = self.value if len(self.value) <= 40 else bytes(self.value[:37]) + b"..."
        parts = [f"offset={self.offset}", f"timestamp={self.timestamp}"]
        if self.key is not None:
            parts.append(f"key={self.key!r}")
        parts.append(f"value={value!r}")
        if self.headers:
            parts.append(f"headers={dict(self.headers)!r}")
        return f"Record({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (
            self.offset == other.offset
            and self.timestamp == other.timestamp
            and self.key == other.key
            and self.value == other.value
            and dict(self.headers or {}) == dict(other.headers or {})
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value


class Message(Record):
    """A record as a consumer receives it: a Record plus its ``topic`` and
    ``partition``. Only reads make them, so every field is known: ``offset``,
    ``timestamp`` and ``headers`` are never None."""

    __slots__ = ("topic", "partition")

    headers: Mapping[str, bytes]
    timestamp: int
    offset: int
    topic: str
    partition: int

    def __init__(
        self,
        value: bytes,
        key: bytes | None,
        headers: Mapping[str, bytes],
        timestamp: int,
        offset: int,
        topic: str,
        partition: int,
    ) -> None:
        # Assigned here rather than through Record.__init__: one call less per
        # message on the consumer's hot path.
        self.value = value
        self.key = key
        self.headers = headers
        self.timestamp = timestamp
        self.offset = offset
        self.topic = topic
        self.partition = partition

    def __repr__(self) -> str:
        return f"Message(topic={self.topic!r}, partition={self.partition}, " + (
            super().__repr__()[len("Record(") :]
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (self.topic, self.partition) == (other.topic, other.partition) and (
            super().__eq__(other)
        )

    __hash__ = None
