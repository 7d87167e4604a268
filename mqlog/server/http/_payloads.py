"""Record payloads in JSON: keys, values and header values as text or base64.

A payload travels as strings plus an ``encoding`` field that says how every
one of them (key, value, each header value) turns into bytes:

- ``"utf-8"`` (the default): the strings are the text, encoded as UTF-8;
- ``"base64"``: the strings are standard base64 (RFC 4648, with padding).

Header names are always text. What the server sends back uses ``"utf-8"``
when the key, the value and every header value are valid UTF-8, and
``"base64"`` otherwise (or always, when the client asks for base64), so
bytes round-trip exactly either way: :func:`payload_out` of what
:func:`payload_bytes` decoded gives back equal bytes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Annotated, Literal, TypedDict

import pydantic
from fastapi import Query

from mqlog.server.http._errors import ApiError

Encoding = Literal["utf-8", "base64"]

#: The ``encoding`` query parameter of the routes that send records.
EncodingQuery = Annotated[Encoding, Query(description=(
    "utf-8: UTF-8 text where a record's bytes are all UTF-8, base64 for the others; "
    "base64: always base64."))]


class PayloadFields(TypedDict):
    """The fields of :class:`PayloadOut`, to build a model that extends it."""

    key: str | None
    value: str
    headers: dict[str, str]
    encoding: Encoding


class PayloadOut(pydantic.BaseModel):
    """Key, value and headers of a record as the server sends them."""

    key: str | None
    value: str
    headers: dict[str, str]
    encoding: Encoding


def payload_out(key: bytes | None, value: bytes, headers: Mapping[str, bytes] | None,
                force_base64: bool = False) -> PayloadFields:
    """The fields of a :class:`PayloadOut` for these bytes: UTF-8 text when all of
    them are UTF-8 (and ``force_base64`` is false), base64 otherwise."""
    pairs = dict(headers or {})
    if not force_base64:
        try:
            return {"key": None if key is None else bytes(key).decode(),
                    "value": bytes(value).decode(),
                    "headers": {name: bytes(data).decode() for name, data in pairs.items()},
                    "encoding": "utf-8"}
        except UnicodeDecodeError:
            pass
    return {"key": None if key is None else _b64(key), "value": _b64(value),
            "headers": {name: _b64(data) for name, data in pairs.items()},
            "encoding": "base64"}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def text_bytes(text: str, encoding: Encoding, what: str) -> bytes:
    """The bytes ``text`` stands for under ``encoding``: 400 ``invalid_base64``
    naming ``what`` when it is not valid base64, 400 ``invalid_request`` when it
    cannot be UTF-8 (a lone surrogate, which JSON's ``\\uD800`` escapes allow)."""
    if encoding == "base64":
        try:
            return base64.b64decode(text.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error):
            raise ApiError(400, "invalid_base64", f"{what} is not valid base64") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, "invalid_request",
                       f"{what} is not valid UTF-8 text (a lone surrogate)") from None
