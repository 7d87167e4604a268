"""Races in the log store found while fuzzing it under ``mqlog verify``.

Retention runs in the appending thread (``Partition._roll`` ->
``_enforce_retention_locked``) and closes the segments it deletes while other
threads of the same process may still be reading them or refreshing the
partition's segment view (``Partition._refresh`` -> ``_load_view``, run by
readers and by the interval flusher under ``_view_lock`` only). Seen: KeyError
and OSError(EBADF) in the reader, KeyError in the appender, and SIGBUS (the
closed descriptor's number is reused by a new segment file that is later
trimmed under the stale map). The check runs in a child process so that a
SIGBUS fails this test instead of killing the test run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent("""
    import collections, sys, tempfile, threading, time
    import mqlog

    errors = collections.Counter()
    with mqlog.open(tempfile.mkdtemp()) as log:
        log.create_topic("t", segment_bytes=4096, retention_bytes=8192, durability="none")
        stop = threading.Event()

        def read_from_the_start():
            while not stop.is_set():
                try:
                    log.read("t", 0, log.start_offset("t", 0), max_records=1)
                except mqlog.OffsetOutOfRangeError:
                    pass  # retention moved the start meanwhile: expected
                except Exception as error:
                    errors["reader " + type(error).__name__] += 1

        reader = threading.Thread(target=read_from_the_start)
        reader.start()
        deadline = time.monotonic() + 2.0
        try:
            while time.monotonic() < deadline and not errors:
                try:
                    log.append("t", 0, [b"x" * 200] * 5)
                except Exception as error:
                    errors["append " + type(error).__name__] += 1
        finally:
            stop.set()
            reader.join()
    print(dict(errors))
""")


def test_retention_while_another_thread_reads() -> None:
    child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                           timeout=120)
    assert (child.returncode, child.stdout.strip()) == (0, "{}"), child.stderr[-2000:]
