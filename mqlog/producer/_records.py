"""What a record's value, key and headers may be, and their stored form.

Owns no state: conversions ``send`` and ``send_many`` apply before anything
is queued, so a bad record raises TypeError and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import msgpack

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


def as_bytes(value: str | ReadableBuffer, what: str) -> bytes:
    """bytes of a str (UTF-8) or of any buffer (its bytes in C order: ``len()`` of
    an array or memoryview counts items, not bytes)."""
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode()
    try:
        view = memoryview(value)
    except TypeError:
        raise TypeError(f"{what} must be bytes or str, not {type(value).__name__}") from None
    with view:
        return view.tobytes()


def encoded_headers(headers: object) -> bytes:
    """The headers as the log stores them (checks their types; the size counts
    toward max_record_bytes)."""
    if not isinstance(headers, Mapping):
        raise TypeError("headers must be a mapping of str to bytes")
    clean = {}
    for name, value in headers.items():
        if not isinstance(name, str):
            raise TypeError(f"header names must be str, not {type(name).__name__}")
        clean[name] = as_bytes(value, f"header {name!r}")
    return msgpack.packb(clean, use_bin_type=True)
