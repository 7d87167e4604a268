"""Fixtures shared by the whole test suite: a log directory and a controllable clock."""

from __future__ import annotations

from pathlib import Path

import pytest

#: Where every fake clock starts: 2023-11-14T22:13:20Z, far from 0 so that
#: subtracting a retention period never goes negative.
CLOCK_START_MS = 1_700_000_000_000


class FakeClock:
    """A clock that only moves when told to; pass it as ``mqlog.open(..., clock=clock)``.

    Calling it returns the current time in ms since the epoch, as the clock
    mqlog expects does.
    """

    def __init__(self, now_ms: int = CLOCK_START_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> int:
        """Move time forward by ``ms`` and return the new time."""
        if ms < 0:
            raise ValueError(f"a clock only moves forward, not by {ms} ms")
        self.now_ms += ms
        return self.now_ms

    def __repr__(self) -> str:
        return f"FakeClock(now_ms={self.now_ms})"


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    """A path for a log directory that does not exist yet (mqlog.open creates it)."""
    return tmp_path / "log"


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock starting at CLOCK_START_MS."""
    return FakeClock()
