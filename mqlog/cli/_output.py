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


def format_age(ms: int | float | None) -> str:
    """A duration in ms, short and readable: ``850ms``, ``12.3s``, ``5m03s``, ``2h05m``,
    ``3d04h``; ``-`` for None."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def format_rate(per_second: float | None) -> str:
    """Records per second with a thousands separator; ``-`` when not measured."""
    return "-" if per_second is None else f"{per_second:,.0f}/s"
