"""A compacting child process for tests/crash/test_compaction_crash.py.

``python -m tests.crash._compaction_child LOG TOPIC DIE_AT``: opens the log and the
partition, prints ``ready``, then runs ``Log.compact(TOPIC)``. With DIE_AT > 0 it
SIGKILLs itself just before its DIE_AT-th file-system step of the compaction (an
``os.fsync`` or an ``os.replace``: the points where the files on disk change
meaning); if the run ends first it prints ``done STEPS``.
"""

from __future__ import annotations

import os
import signal
import sys

import mqlog


def main(path: str, topic: str, die_at: int) -> None:
    log = mqlog.open(path, durability="none")
    log.read(topic, 0, 0, max_records=1)  # opened (leftovers settled) before counting
    log.engine._compactor.stop()  # only the compaction below
    steps = 0

    def counted(function):
        def step(*args, **kwargs):
            nonlocal steps
            steps += 1
            if steps == die_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return function(*args, **kwargs)
        return step

    os.fsync = counted(os.fsync)
    os.replace = counted(os.replace)
    os.write(1, b"ready\n")
    log.compact(topic)
    os.write(1, b"done %d\n" % steps)
    os._exit(0)  # as if killed right after: no close


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
