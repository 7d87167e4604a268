"""The writer process of ``mqlog demo``: appends until killed, printing each ack.

Run as ``python -m mqlog.cli._demo_writer LOG_DIR TOPIC``. Appends batches
to partition 0 of TOPIC (a ``durability="always"`` topic: an append returns
once its records are on stable storage) and prints ``FIRST_OFFSET COUNT`` per
append that returned, so the parent knows exactly which records were
acknowledged when it SIGKILLs this process. Record ``n`` of the partition has
the value ``demo_value(0, n)``, which the parent checks after recovery.
"""

from __future__ import annotations

import sys
import time

import mqlog
from mqlog.cli._demo_run import WRITER_BATCH, demo_value

#: The writer stops by itself after this long (the parent kills it much sooner).
WRITER_MAX_SECONDS = 120.0


def run(path: str, topic: str) -> None:
    """Append and acknowledge until killed, the stdout pipe closes, or time runs out."""
    deadline = time.monotonic() + WRITER_MAX_SECONDS
    with mqlog.open(path) as log:
        offset = log.end_offset(topic, 0)
        while time.monotonic() < deadline:
            values = [demo_value(0, n) for n in range(offset, offset + WRITER_BATCH)]
            first = log.append(topic, 0, values)
            if first != offset:
                raise SystemExit(f"expected to append at offset {offset}, got {first}")
            sys.stdout.write(f"{first} {WRITER_BATCH}\n")
            sys.stdout.flush()
            offset += WRITER_BATCH


if __name__ == "__main__":
    try:
        run(sys.argv[1], sys.argv[2])
    except BrokenPipeError:  # the parent went away: nobody is counting acks any more
        sys.exit(0)
