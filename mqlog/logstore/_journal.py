"""The recovery journal: one line per recovery step that cut, skipped or rebuilt something.

File: ``<log>/recovery.jsonl``, one JSON object per line, appended by whichever
process recovered a partition. Each line is written with one ``write`` on a
file opened ``O_APPEND`` (lines of several processes never interleave) and
fsynced: the journal is the record of what a recovery did, and recoveries are
rare. mqlog never rewrites or trims it; deleting it loses only the history.
A torn last line (a crash while appending) is skipped by :func:`read_journal`.

Every entry is also logged as a warning on the ``mqlog.logstore`` logger.

Fields of a line (see :class:`RecoveryEvent`): ``time_ms``, ``topic``,
``partition``, ``action``, ``first_offset`` and ``end_offset`` (the offsets
concerned, end exclusive; equal when none), ``bytes`` (bytes removed from the
data, 0 when none), ``file`` and ``reason``. Actions:

* ``cut``: bytes after the last valid batch were discarded (a torn or damaged
  tail, or a batch written but never published);
* ``gap``: offsets were recorded as missing (a gap batch, see ``_format``): the
  records were lost, and their offsets are never handed out again;
* ``state``: the state file was damaged; the segment was re-read instead;
* ``index``: a closed segment's index files disagreed with its data and were
  rebuilt from it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Literal

from mqlog.logstore._files import fsync_file
from mqlog.logstore.layout import JOURNAL_FILE

Action = Literal["cut", "gap", "state", "index", "damage"]

_log = logging.getLogger("mqlog.logstore")


@dataclasses.dataclass(frozen=True)
class RecoveryEvent:
    """One thing a recovery did to a partition."""

    time_ms: int
    topic: str
    partition: int
    action: Action
    first_offset: int
    end_offset: int
    bytes: int
    file: str
    reason: str

    def describe(self) -> str:
        """One line for people: what, where, why."""
        offsets = (f" offsets {self.first_offset}..{self.end_offset - 1}"
                   if self.end_offset > self.first_offset else "")
        size = f" ({self.bytes} bytes)" if self.bytes else ""
        return (f"{self.topic}/{self.partition}: {self.action}{offsets}{size} in "
                f"{self.file}: {self.reason}")


def log_root(partition_directory: str) -> str:
    """The log directory holding a partition directory (``<log>/topics/<t>/<n>``)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        partition_directory))))


def record(root: str, event: RecoveryEvent) -> None:
    """Log ``event`` as a warning and append it to the journal of the log at ``root``.

    The data repair the event describes has already happened: failing to write
    the journal (a full disk) is logged, not raised, so that the log still opens."""
    _log.warning("recovery: %s", event.describe())
    line = json.dumps(dataclasses.asdict(event), sort_keys=True) + "\n"
    try:
        fd = os.open(os.path.join(root, JOURNAL_FILE), os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                     0o644)
        try:
            os.write(fd, line.encode())
            fsync_file(fd)
        finally:
            os.close(fd)
    except OSError:
        _log.exception("could not append to the recovery journal in %s", root)


def read_journal(root: str | os.PathLike[str]) -> list[RecoveryEvent]:
    """The entries of the journal of the log at ``root``, oldest first ([] when
    there is none); lines that do not parse (a torn last line) are skipped."""
    try:
        with open(os.path.join(os.fspath(root), JOURNAL_FILE), "rb") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return []
    names = {field.name for field in dataclasses.fields(RecoveryEvent)}
    events = []
    for line in lines:
        try:
            document = json.loads(line)
            events.append(RecoveryEvent(**{k: v for k, v in document.items() if k in names}))
        except (ValueError, TypeError):
            continue
    return events
