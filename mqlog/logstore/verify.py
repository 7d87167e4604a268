"""Verify a whole log directory without changing it: what ``mqlog verify`` reports.

:func:`verify_log` checks every topic, partition, segment and index of a log
directory: every batch's framing and checksum, offset continuity within and
across segments, that offset- and time-index entries point at batch starts
with matching offsets and are monotonic, and that each partition's published
state agrees with its files (one partition at a time, see
``_verify_partition``). Gap batches (offsets recovery recorded as missing, see
``_format``) are valid batches without records. The report also carries the
recovery journal (``_journal``): what earlier recoveries cut, skipped or
rebuilt.

Only reads, so it is safe on a damaged log and never changes what it reports
on: files are opened ``O_RDONLY`` and mapped ``PROT_READ``; the state file is
parsed from its bytes (:func:`read_state`); and ``mqlog.open`` is never called
(opening a partition runs recovery, which cuts a damaged tail). On a log that
other processes are appending to, the result is a snapshot: data written after
the state was read shows as an unpublished tail (a warning, not an error).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os

from mqlog.errors import CorruptMetadataError, MqlogError
from mqlog.logstore._journal import RecoveryEvent, read_journal
from mqlog.logstore._segment import list_segment_bases
from mqlog.logstore._topic import read_metadata
from mqlog.logstore._verify_partition import (
    PartitionCheck,
    PartitionReport,
    Problem,
    Severity,
    read_state,
)
from mqlog.logstore.layout import (
    CLEANER_CHECKPOINT_FILE,
    LAYOUT_FILE,
    LAYOUT_VERSION,
    STATE_FILE,
    TOPIC_METADATA_FILE,
    TOPICS_DIR,
)
from mqlog.names import validate_name

__all__ = [
    "CHECK_ATTEMPTS", "PartitionReport", "Problem", "RecoveryEvent", "Severity",
    "VerifyReport", "read_journal", "read_state", "verify_log",
]

#: Checks of one partition before giving up on seeing its segments hold still.
CHECK_ATTEMPTS = 5


@dataclasses.dataclass
class VerifyReport:
    """Result of :func:`verify_log`: per-partition counts and every problem found."""

    path: str
    topics: list[str]
    partitions: list[PartitionReport]
    problems: list[Problem]
    #: The recovery journal, oldest first: history, not problems (see ``_journal``).
    recoveries: list[RecoveryEvent] = dataclasses.field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when no error was found (warnings allowed)."""
        return not self.errors

    @property
    def segments(self) -> int:
        return sum(p.segments for p in self.partitions)

    @property
    def batches(self) -> int:
        return sum(p.batches for p in self.partitions)

    @property
    def records(self) -> int:
        return sum(p.records for p in self.partitions)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.partitions)


def verify_log(path: str | os.PathLike[str]) -> VerifyReport:
    """Check every topic, partition, segment and index of the log at ``path``.

    Raises FileNotFoundError when ``path`` is not a directory and MqlogError
    when it is not a log directory (neither ``mqlog.json`` nor ``topics/``);
    everything else found is reported as a :class:`Problem`.
    """
    root = os.path.abspath(os.fspath(path))
    if not os.path.isdir(root):
        raise FileNotFoundError(errno.ENOENT, "log directory does not exist", root)
    topics_dir = os.path.join(root, TOPICS_DIR)
    has_layout = os.path.exists(os.path.join(root, LAYOUT_FILE))
    if not has_layout and not os.path.isdir(topics_dir):
        raise MqlogError(f"{root} is not an mqlog log directory (no {LAYOUT_FILE})")
    report = VerifyReport(root, [], [], [], read_journal(root))
    _check_layout(root, report.problems)
    for name in _topic_names(topics_dir):
        report.topics.append(name)
        _verify_topic(os.path.join(topics_dir, name), name, report)
    return report


def _check_layout(root: str, problems: list[Problem]) -> None:
    path = os.path.join(root, LAYOUT_FILE)
    try:
        with open(path) as handle:
            version = json.load(handle).get("layout_version")
    except (OSError, ValueError, AttributeError) as error:
        problems.append(Problem("error", f"cannot read the layout file: {error}", file=path))
        return
    if version != LAYOUT_VERSION:
        problems.append(Problem(
            "error", f"layout version {version!r}, this mqlog reads {LAYOUT_VERSION}", file=path,
        ))


def _topic_names(topics_dir: str) -> list[str]:
    """Topic directories, sorted; staging and deleting directories are skipped."""
    if not os.path.isdir(topics_dir):
        return []
    names = []
    for name in os.listdir(topics_dir):
        try:
            validate_name("topic", name, internal=True)
        except MqlogError:
            continue
        if os.path.isdir(os.path.join(topics_dir, name)):
            names.append(name)
    return sorted(names)


def _verify_topic(directory: str, name: str, report: VerifyReport) -> None:
    try:
        partition_count, config = read_metadata(directory)
    except (OSError, CorruptMetadataError) as error:
        report.problems.append(Problem(
            "error", f"cannot read the topic metadata: {error}", topic=name,
            file=os.path.join(directory, TOPIC_METADATA_FILE),
        ))
        return
    for number in range(partition_count):
        partition_dir = os.path.join(directory, str(number))
        if not os.path.isdir(partition_dir):
            report.problems.append(Problem(
                "error", "partition directory is missing", topic=name, partition=number,
                file=partition_dir,
            ))
            continue
        compacted = config.cleanup_policy == "compact" or os.path.exists(
            os.path.join(partition_dir, CLEANER_CHECKPOINT_FILE))
        partition, problems = _check_partition(partition_dir, name, number, compacted)
        report.partitions.append(partition)
        report.problems.extend(problems)


def _segments_snapshot(directory: str) -> tuple[int | None, list[int]]:
    """What changes when segments roll or are deleted: the state epoch and the files."""
    try:
        state = read_state(os.path.join(directory, STATE_FILE))
    except FileNotFoundError:
        state = None
    return (None if state is None else state.epoch), list_segment_bases(directory)


def _check_partition(directory: str, topic: str, number: int,
                     compacted: bool) -> tuple[PartitionReport, list[Problem]]:
    """Check one partition; again when its segments changed meanwhile (a log in use
    rolls and deletes segments: a check across such a change sees files and state
    from different moments and would report damage that is not there)."""
    for _attempt in range(CHECK_ATTEMPTS):
        before = _segments_snapshot(directory)
        check = PartitionCheck(directory, topic, number, compacted)
        try:
            check.run()
        except FileNotFoundError:  # a segment deleted by retention meanwhile
            continue
        if _segments_snapshot(directory) == before:
            return check.report, check.problems
    check.problem("warning", f"the partition's segments changed during each of "
                  f"{CHECK_ATTEMPTS} attempts to check it (it is in use); what is reported "
                  f"may come from files of different moments")
    return check.report, check.problems
