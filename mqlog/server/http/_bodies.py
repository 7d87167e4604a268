"""Bytes in JSON: a text field plus ``"encoding"``.

``"utf-8"`` (the default): the text is the bytes decoded as UTF-8;
``"base64"``: standard base64 (RFC 4648, with padding). One encoding covers
every byte field of one message (value or body, key, header values). Going
out, a message is ``utf-8`` when all of them are valid UTF-8, else
``base64``, so binary data never comes back mangled.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Literal

from mqlog.server.http._errors import ApiError

Encoding = Literal["utf-8", "base64"]


def to_bytes(text: str, encoding: Encoding, field: str) -> bytes:
    """The bytes ``text`` stands for; 400 ``invalid_base64`` for bad base64."""
    if encoding == "utf-8":
        return text.encode()
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "invalid_base64", f"{field} is not valid base64") from None


def encoding_for(value: bytes, key: bytes | None, headers: Mapping[str, bytes]) -> Encoding:
    """``utf-8`` if the value, key and header values are all valid UTF-8, else ``base64``."""
    try:
        value.decode()
        if key is not None:
            key.decode()
        for header in headers.values():
            bytes(header).decode()
    except UnicodeDecodeError:
        return "base64"
    return "utf-8"


def to_text(data: bytes, encoding: Encoding) -> str:
    """``data`` as text in ``encoding`` (see :func:`encoding_for`)."""
    if encoding == "utf-8":
        return data.decode()
    return base64.b64encode(data).decode("ascii")
