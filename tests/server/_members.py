"""A client process that stays a member of a consumer group until the test
stops or kills it, for the rebalance tests of clients outside the test's own
process (kcat, kafkajs, a second kafka-python or aiokafka consumer).

:class:`MemberProcess` starts the command with stdout piped; a thread reads it
line by line, parses each line with the function given (``None``: skip the
line) and keeps what it returns, so the test polls :meth:`MemberProcess.seen`
while the process runs and still has every line written before a ``kill -9``.
stderr goes to an unnamed temporary file, given back by :meth:`stderr` for
failure messages. Use it as a context manager: the process is killed at the
end of the block whatever happened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from tests.server._serve import REPO_ROOT

Line = TypeVar("Line")
#: How long a process may take to exit after SIGTERM before it is killed.
STOP_TIMEOUT_S = 30.0


class MemberProcess(Generic[Line]):
    """One running client process; :meth:`seen` is what it printed so far,
    parsed (in order)."""

    def __init__(self, command: Sequence[str], parse: Callable[[str], Line | None]) -> None:
        self._stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in _reap
        self._parse = parse
        self._lines: list[Line] = []
        self._lock = threading.Lock()
        self.command = list(command)
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE,
                                        stderr=self._stderr, text=True, cwd=REPO_ROOT)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for text in self.process.stdout:
            parsed = self._parse(text)
            if parsed is not None:
                with self._lock:
                    self._lines.append(parsed)

    def seen(self) -> list[Line]:
        """Every parsed line so far."""
        with self._lock:
            return list(self._lines)

    def running(self) -> bool:
        return self.process.poll() is None

    def stderr(self) -> str:
        """What the process wrote on stderr so far (its last 4,000 characters)."""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()[-4000:]

    def kill(self) -> None:
        """``kill -9``: the process gets no chance to leave its group or
        commit; then every line it wrote before dying is read."""
        if self.running():
            os.kill(self.process.pid, signal.SIGKILL)
        self._reap()

    def stop(self) -> int:
        """SIGTERM, wait (kill after :data:`STOP_TIMEOUT_S`); the exit status."""
        if self.running():
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._reap()
        return self.process.returncode

    def _reap(self) -> None:
        self.process.wait()
        self._reader.join(timeout=STOP_TIMEOUT_S)

    def __enter__(self) -> MemberProcess[Line]:
        return self

    def __exit__(self, *_: object) -> None:
        self.kill()
        self._stderr.close()
