"""The times a record carries: its timestamp, and when queue groups may deliver
it and until when.

Owns no state. ``delay_s``/``deliver_at`` and ``ttl_s`` of ``send`` become the
``mqlog.deliver_at`` and ``mqlog.expires_at`` headers (ms since the epoch, as
decimal text), computed from the engine's clock at the time of the send; queue
groups obey them; plain consumers see every record at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from mqlog.errors import ConfigError
from mqlog.headers import DELIVER_AT, EXPIRES_AT

#: Longest delay_s or ttl_s: whole ms up to 2**53 are exact in a float, and now
#: plus that many ms still fits a 64-bit time (about 285,000 years).
SECONDS_MAX = 2**53 // 1000


def timing_headers(headers: Mapping[str, bytes] | None, now_ms: int, delay_s: float | None,
                   deliver_at: int | None, ttl_s: float | None) -> dict[str, bytes]:
    """``headers`` plus the delivery-time and expiry headers queue groups obey."""
    if delay_s is not None and deliver_at is not None:
        raise ConfigError("give delay_s or deliver_at, not both")
    merged = dict(headers or {})
    if delay_s is not None:
        _check_seconds("delay_s", delay_s, positive=False)
        deliver_at = now_ms + int(delay_s * 1000)
    if deliver_at is not None:
        check_ms("deliver_at", deliver_at)
        merged[DELIVER_AT] = str(deliver_at).encode()
    if ttl_s is not None:
        _check_seconds("ttl_s", ttl_s, positive=True)
        merged[EXPIRES_AT] = str(now_ms + int(ttl_s * 1000)).encode()
    return merged


def check_ms(name: str, value: object) -> None:
    """TypeError unless ``value`` is an int (ms since the epoch); ConfigError outside
    the 64-bit range of record timestamps."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int (ms since the epoch)")
    if not -(2**63) <= value < 2**63:
        raise ConfigError(f"{name} {value} is out of the 64-bit range")


def _check_seconds(name: str, value: object, positive: bool) -> None:
    """TypeError unless ``value`` is an int or float; ConfigError unless it is finite,
    at most SECONDS_MAX and at least 0 (over 0 if ``positive``)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    low_ok = value > 0 if positive else value >= 0
    if not (low_ok and math.isfinite(value) and value <= SECONDS_MAX):
        raise ConfigError(f"{name} must be a number {'>' if positive else '>='} 0 and <= "
                          f"{SECONDS_MAX}, not {value!r}")
