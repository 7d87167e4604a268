"""Running the CLI in tests: through typer's CliRunner and as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from typer.testing import CliRunner, Result

from mqlog.cli import app

#: The installed console script.
MQLOG = Path(sys.executable).parent / "mqlog"


def run(runner: CliRunner, *args: str | os.PathLike, **kwargs) -> Result:
    """``mqlog ARGS`` in this process."""
    return runner.invoke(app, [os.fspath(a) for a in args], **kwargs)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def start(*args: str | os.PathLike, cwd: Path | None = None) -> subprocess.Popen:
    """``mqlog ARGS`` as a real process; stdout and stderr are text pipes. Its stdout is
    buffered as usual (whatever PYTHONUNBUFFERED says here), so what a test reads
    while it runs is what mqlog flushed. Ctrl-C (SIGINT) reaches it even when the
    tests run where SIGINT is ignored (a background job), which a child would inherit."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    return subprocess.Popen([MQLOG, *map(os.fspath, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd, env=env,
                            preexec_fn=_default_sigint)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finish(process: subprocess.Popen, timeout: float = 30) -> tuple[int, str, str]:
    """Wait for a process started by :func:`start`: (exit code, stdout, stderr)."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, stdout, stderr


def ctrl_c() -> None:
    """Ctrl-C for this process: SIGINT to the main thread (where a command runs under
    CliRunner), which also cuts short the sleep or wait it is in. The tests using it
    rely on the autouse ``sigint`` fixture, so that SIGINT raises KeyboardInterrupt."""
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


def ctrl_c_after(seconds: float) -> threading.Thread:
    """Start a thread that presses Ctrl-C after ``seconds``; join it after the command."""
    thread = threading.Thread(target=lambda: (time.sleep(seconds), ctrl_c()))
    thread.start()
    return thread
