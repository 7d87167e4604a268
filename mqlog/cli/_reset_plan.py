"""Reset plans as kafka-consumer-groups writes and reads them (``--export``,
``--from-file``): CSV without a header, one line per partition,
``topic,partition,new-offset``. Lines of the multi-group form,
``group,topic,partition,new-offset``, are read too (those of other groups are
an error, not skipped: a plan applied to the wrong group must not half apply).
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Mapping
from pathlib import Path

from mqlog.cli._app import EXIT_USAGE, CliError
from mqlog.consumer import TopicPartition

#: The file name that means stdin (--from-file) or stdout (--export).
STDIO = "-"


def read_plan(path: Path, group: str) -> dict[TopicPartition, int]:
    """The offsets of a reset plan file (``-``: stdin); a bad line is a usage error
    naming the file and line. Empty lines are skipped."""
    text = sys.stdin.read() if str(path) == STDIO else path.read_text()
    plan: dict[TopicPartition, int] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not any(cell.strip() for cell in row):
            continue
        where = f"{path} line {number}"
        cells = [cell.strip() for cell in row]
        if len(cells) == 4:
            if cells[0] != group:
                raise CliError(f"{where}: a row of group {cells[0]!r}, not {group!r}",
                               EXIT_USAGE)
            cells = cells[1:]
        if len(cells) != 3:
            raise CliError(f"{where}: expected topic,partition,new-offset, not {','.join(row)!r}",
                           EXIT_USAGE)
        topic, partition, offset = cells
        if not (partition.isdigit() and offset.isdigit()):
            raise CliError(f"{where}: partition and offset must be whole numbers >= 0, not "
                           f"{partition!r} and {offset!r}", EXIT_USAGE)
        tp = TopicPartition(topic, int(partition))
        if tp in plan:
            raise CliError(f"{where}: {topic}/{partition} is listed twice", EXIT_USAGE)
        plan[tp] = int(offset)
    if not plan:
        raise CliError(f"{path}: no offsets in the reset plan", EXIT_USAGE)
    return plan


def write_plan(path: Path, offsets: Mapping[TopicPartition, int]) -> None:
    """Write ``offsets`` as a reset plan to ``path`` (``-``: stdout), sorted."""
    text = "".join(f"{tp.topic},{tp.partition},{offset}\n"
                   for tp, offset in sorted(offsets.items()))
    if str(path) == STDIO:
        sys.stdout.write(text)
    else:
        path.write_text(text)
