"""Counts of the crash, power-loss, disk-full and kill-storm tests, summed over a run.

Each such test builds a :class:`Totals` and calls :meth:`Totals.write` at the
end (also when it fails): when ``MQLOG_SOAK_COUNTS`` names a file, one JSON
line of its counts is appended to it. ``python -m tests._soak_summary FILE``
sums the lines and prints one summary line (``make soak`` does), e.g.::

    crashes=1234 power_losses=1050 enospc=300 acknowledged=123456 lost=0 ...

It exits non-zero when a count named ``lost``, ``corrupt_served`` or
``offsets_reused`` (or starting with one of these) is above 0, or when the file
is missing (no test reported). Counts of ``known_gap_...`` are checks that a
test marks as failing for a known reason (see tests/faults/test_power_loss.py).
"""

from __future__ import annotations

import collections
import fcntl
import json
import os
import sys

ENV = "MQLOG_SOAK_COUNTS"
#: Printed first, in this order, even when 0; other counts follow sorted.
HEADLINE = ("crashes", "power_losses", "enospc", "eio", "acknowledged", "lost",
            "corrupt_served", "offsets_reused")
MUST_BE_ZERO = ("lost", "corrupt_served", "offsets_reused")


class Totals:
    """Counts of one test, appended as one JSON line by :meth:`write`."""

    def __init__(self, test: str) -> None:
        self.test = test
        self.counts: collections.Counter = collections.Counter()

    def add(self, **counts: int) -> None:
        self.counts.update(counts)

    def write(self) -> None:
        path = os.environ.get(ENV)
        if not path:
            return
        line = json.dumps({"test": self.test, **self.counts}) + "\n"
        with open(path, "a") as handle:  # tests may run in parallel processes
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write(line)


def summarize(path: str) -> tuple[str, bool]:
    """(the summary line, whether every must-be-zero count is 0)."""
    totals: collections.Counter = collections.Counter()
    with open(path) as handle:
        for line in handle:
            entry = json.loads(line)
            entry.pop("test", None)
            totals.update(entry)
    names = [*HEADLINE, *sorted(set(totals) - set(HEADLINE))]
    ok = not any(count for name, count in totals.items() if name.startswith(MUST_BE_ZERO))
    return " ".join(f"{name}={totals[name]}" for name in names), ok


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not os.path.exists(argv[0]):
        print(f"usage: python -m tests._soak_summary FILE (written by tests through ${ENV})",
              file=sys.stderr)
        return 2
    line, ok = summarize(argv[0])
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
