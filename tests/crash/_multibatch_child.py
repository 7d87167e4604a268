"""Child process of ``test_multibatch_kill9``: appends multi-batch appends until killed.

``python -m tests.crash._multibatch_child LOG TOPIC SEED GENERATION REPORT``
opens the log, writes ``ready`` to the REPORT file, then appends append 0, 1,
2, ... of :func:`append_values` (split into batches of at most
``BATCH_BYTES_MAX``) and writes ``ack APPEND FIRST COUNT`` to REPORT after each
returned. Each report line is one ``os.write`` to a file opened with
``O_APPEND``, so a kill never leaves half a line. Segment writes are slowed
down (a slow disk), so that most kills land between two batches of an append.
"""

from __future__ import annotations

import os
import random
import sys
import time

import mqlog
from mqlog.logstore import _format as fmt

#: Batches of at most 2 KiB: an append of 200 records of 100 bytes is 10 batches.
BATCH_BYTES_MAX = 2048
#: How long each segment write takes at least.
WRITE_S = 0.0005


def append_values(seed: int, generation: int, append: int) -> list[bytes]:
    """The records of one append: 1..200 values naming generation, append and index."""
    rng = random.Random(f"{seed}/{generation}/{append}")
    count = rng.randint(1, 200)
    return [f"{generation}:{append}:{index}".encode().ljust(rng.randint(20, 100), b".")
            for index in range(count)]


def _slow_pwritev(fd: int, buffers, position: int, _write=os.pwritev) -> int:
    written = _write(fd, buffers, position)
    time.sleep(WRITE_S)
    return written


def main(path: str, topic: str, seed: int, generation: int, report: str) -> None:
    fmt.BATCH_BYTES_MAX = BATCH_BYTES_MAX
    os.pwritev = _slow_pwritev
    fd = os.open(report, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    log = mqlog.open(path)
    os.write(fd, b"ready\n")
    append = 0
    while True:
        records = append_values(seed, generation, append)
        first = log.append(topic, 0, records)
        os.write(fd, f"ack {append} {first} {len(records)}\n".encode())
        append += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
