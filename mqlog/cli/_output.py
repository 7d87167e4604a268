"""Output helpers shared by the commands: consoles, JSON lines, value formatting.

Data goes to stdout, messages and progress to stderr, so ``--json`` output
can be piped as is. The consoles look up ``sys.stdout``/``sys.stderr`` at
each write, so tests that swap the streams see the output.
"""

from __future__ import annotations

import base64
import datetime
import json
import sys
from collections.abc import Mapping
from typing import Any

from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def emit_json(document: Mapping[str, Any]) -> None:
    """Write one JSON object as one line on stdout."""
    sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")


def one_line(error: BaseException) -> str:
    """An error as one line: ``strerror: filename`` for OS errors, else its message."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        text = f"{error.strerror}: {error.filename}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def b64(data: bytes | None) -> str | None:
    """Bytes as base64 text for JSON (None stays None)."""
    return None if data is None else base64.b64encode(data).decode("ascii")


def short_repr(data: bytes | None, width: int) -> str:
    """``repr`` of bytes, cut to ``width`` characters with ``...`` when longer."""
    text = repr(None if data is None else bytes(data))
    return text if len(text) <= width else text[: max(width - 3, 1)] + "..."


def format_ms(timestamp_ms: int) -> str:
    """A timestamp (ms since the epoch) as ISO 8601 UTC; the number when out of range."""
    try:
        moment = _EPOCH + datetime.timedelta(milliseconds=timestamp_ms)
    except OverflowError:
        return str(timestamp_ms)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
