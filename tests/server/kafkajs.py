"""kafkajs (Node.js) as a client in the server tests: runs
``node/kafkajs_client.js`` (see its header for the commands and the JSON lines
it prints) and returns those lines as dicts; :func:`group_member` keeps one
consumer running until the test stops or kills it.

kafkajs must be installed (``make test`` does it: tests/server/install_tools.sh);
without it or without node the calling test fails, see tests/server/_tools.py.
"""

from __future__ import annotations

import json
import subprocess

from ._members import MemberProcess
from ._tools import kafkajs_command

TIMEOUT_S = 60.0


class KafkajsError(RuntimeError):
    """The driver exited with an error (its JSON lines and stderr in the message,
    the lines also in ``lines``) or did not finish in time."""

    def __init__(self, message: str, lines: list[dict] | None = None) -> None:
        super().__init__(message)
        self.lines = lines or []


def run(broker: str, *words: str, timeout_s: float = TIMEOUT_S) -> list[dict]:
    """``node kafkajs_client.js BROKER words...``; the JSON lines it printed."""
    command = [*kafkajs_command(), broker, *words]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                              check=False)
    except subprocess.TimeoutExpired as error:
        raise KafkajsError(f"kafkajs {' '.join(words)} did not finish in {timeout_s:g} s; "
                           f"stdout: {error.stdout!r}") from error
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0:
        raise KafkajsError(f"kafkajs {' '.join(words)} exited with {done.returncode}: "
                           f"{lines} {done.stderr[-2000:]}", lines)
    return lines


#: How long a :func:`group_member` keeps consuming unless stopped (longer than any test).
MEMBER_LIFETIME_MS = 600_000


def group_member(broker: str, topic: str, group: str, client_id: str,
                 *options: str) -> MemberProcess[dict]:
    """``kafkajs_client.js consume`` as a member of ``group`` that keeps
    reading ``topic`` (from the beginning, committing each record) until it is
    stopped; its ``record`` lines. ``client_id`` starts its member id in
    mqlog's view of the group; ``options`` are more of the driver's flags."""
    command = [*kafkajs_command(), broker, "consume", topic, group, "1000000000",
               "--timeout-ms", str(MEMBER_LIFETIME_MS), "--client-id", client_id, *options]
    return MemberProcess(command, _record_line)


def _record_line(line: str) -> dict | None:
    if not line.strip():
        return None
    parsed = json.loads(line)
    return parsed if parsed.get("op") == "record" else None
