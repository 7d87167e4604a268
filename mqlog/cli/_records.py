"""Printing records (tail, consume, replay --exec) and reading a topic from chosen
positions (tail, replay).

Records are written as bytes straight to stdout, flushed after every chunk so
that a reader at the other end of a pipe sees each record as it arrives.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import heapq
import json
import re
import select
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING, Annotated

import typer

import mqlog
from mqlog import Record
from mqlog.cli._app import EXIT_USAGE, CliError
from mqlog.cli._output import b64, format_ms
from mqlog.errors import CorruptRecordError, OffsetOutOfRangeError

if TYPE_CHECKING:
    from mqlog.cli._format_string import FormatString

#: Lines printed per write (and flush) of a long output.
WRITE_CHUNK = 1000
#: Longest sleep between two looks for new records when nothing wakes the reader.
FOLLOW_WAIT_S = 1.0


class RecordFormat(str, enum.Enum):
    """How ``tail`` and ``consume`` print a record."""

    text = "text"
    json = "json"
    raw = "raw"


def record_json(topic: str, partition: int, record: Record) -> dict:
    """A record as the JSON object of ``--format json`` (bytes in base64)."""
    return {
        "topic": topic, "partition": partition, "offset": record.offset,
        "timestamp": record.timestamp, "key": b64(record.key), "value": b64(record.value),
        "headers": {name: b64(value) for name, value in (record.headers or {}).items()},
    }


def _text(data: bytes | None) -> str:
    """Bytes as one line of text: UTF-8 (undecodable bytes escaped), line breaks escaped."""
    if data is None:
        return "-"
    text = bytes(data).decode("utf-8", "backslashreplace")
    return text.replace("\n", "\\n").replace("\r", "\\r")


@dataclasses.dataclass(frozen=True)
class RecordPrinter:
    """Writes records to stdout (as bytes) in one format.

    ``grep`` keeps only records whose value or key matches (searched in their
    UTF-8 text). ``template`` (``-F``) replaces the format; ``show_topic`` puts
    ``TOPIC/`` before ``PARTITION:OFFSET`` in ``text`` (when several topics are read).
    """

    format: RecordFormat = RecordFormat.text
    show_key: bool = False
    show_headers: bool = False
    grep: re.Pattern | None = None
    template: FormatString | None = None
    show_topic: bool = False

    def matches(self, record: Record) -> bool:
        if self.grep is None:
            return True
        return any(part is not None and self.grep.search(
            bytes(part).decode("utf-8", "replace")) for part in (record.value, record.key))

    def line(self, topic: str, partition: int, record: Record) -> bytes:
        """The bytes printed for one record, newline included."""
        if self.template is not None:
            return self.template.render(topic, partition, record)
        if self.format is RecordFormat.json:
            document = record_json(topic, partition, record)
            return json.dumps(document, separators=(",", ":")).encode() + b"\n"
        if self.format is RecordFormat.raw:
            key = bytes(record.key or b"") + b"\t" if self.show_key else b""
            return key + bytes(record.value) + b"\n"
        where = f"{topic}/{partition}" if self.show_topic else str(partition)
        assert record.timestamp is not None  # read from the log
        parts = [f"{where}:{record.offset}", format_ms(record.timestamp)]
        if self.show_key:
            parts.append(_text(record.key))
        parts.append(_text(record.value))
        if self.show_headers:
            parts.append(",".join(f"{name}={_text(value)}" for name, value in
                                  (record.headers or {}).items()) or "-")
        return "  ".join(parts).encode("utf-8", "backslashreplace") + b"\n"

    def write(self, topic: str, items: Iterable[tuple[int, Record]]) -> int:
        """Print the matching ``(partition, record)`` items on stdout, flushing every
        WRITE_CHUNK lines and at the end; return how many were printed."""
        return self.write_items((topic, partition, record) for partition, record in items)

    def write_items(self, items: Iterable[tuple[str, int, Record]]) -> int:
        """As :meth:`write`, for ``(topic, partition, record)`` items."""
        stream = _stdout_bytes()
        printed = 0
        chunk: list[bytes] = []
        for topic, partition, record in items:
            if self.matches(record):
                chunk.append(self.line(topic, partition, record))
                if len(chunk) >= WRITE_CHUNK:
                    printed += _flush(stream, chunk)
        return printed + _flush(stream, chunk)


def _flush(stream: IO[bytes], chunk: list[bytes]) -> int:
    """Write and flush the lines of ``chunk`` (emptying it); return how many."""
    count = len(chunk)
    if count:
        stream.write(b"".join(chunk))
        stream.flush()
        chunk.clear()
    return count


def _stdout_bytes() -> IO[bytes]:
    sys.stdout.flush()  # text written before stays before
    return sys.stdout.buffer


def check_stdout_open() -> None:
    """Raise BrokenPipeError if stdout is a pipe whose reader went away, so that a
    command waiting for records (``tail -f | head``) ends as soon as it is not read,
    as GNU tail does, instead of at its next write."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (tests)
    poller = select.poll()
    poller.register(fd, 0)  # errors and hang-ups are always reported
    if any(events & select.POLLERR for _fd, events in poller.poll(0)):
        raise BrokenPipeError(errno.EPIPE, "the reader of stdout went away")


def compile_grep(pattern: str | None) -> re.Pattern | None:
    """``--grep``'s regular expression; a bad one is a usage error."""
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as error:
        raise typer.BadParameter(f"bad regular expression {pattern!r}: {error}",
                                 param_hint="'--grep'") from None


# -- reading -------------------------------------------------------------------------------


def check_window(start_ms: int | None, stop_ms: int | None) -> None:
    """Reject a time window that ends before it starts (``--since 1h --until 2h``):
    a bad-input error (exit 2), not an empty result."""
    if start_ms is not None and stop_ms is not None and stop_ms < start_ms:
        raise CliError(f"the time window ends before it starts: --until is "
                       f"{format_ms(stop_ms)}, the start is {format_ms(start_ms)}", EXIT_USAGE)


def partitions_of(log: mqlog.Log, topic: str, partition: int | None) -> list[int]:
    """The partition numbers to read: ``[partition]`` (checked) or all of the topic."""
    if partition is not None:
        log.end_offset(topic, partition)  # UnknownTopicError / UnknownPartitionError
        return [partition]
    return [p.partition for p in log.describe_topic(topic).partitions]


def offset_positions(log: mqlog.Log, topic: str, partitions: list[int], offset: int,
                     strict: bool) -> dict[int, int]:
    """Start every partition at ``offset``. ``strict`` (one partition named): an
    offset outside its range raises OffsetOutOfRangeError; otherwise a partition
    starts at its start offset if that is later, and one that ends before
    ``offset`` gives nothing."""
    positions = {}
    for number in partitions:
        start, end = log.start_offset(topic, number), log.end_offset(topic, number)
        if strict and not start <= offset <= end:
            raise OffsetOutOfRangeError(
                f"offset {offset} is out of range for {topic}/{number}: valid offsets are "
                f"{start}..{end}", offset=offset, start_offset=start, end_offset=end)
        positions[number] = min(max(offset, start), end)
    return positions


#: What a reader does at damaged records: "raise", or a callable told of each
#: damaged range before it is skipped (see ``Log.iter``).
OnCorrupt = str | Callable[[CorruptRecordError], None]


def merged(log: mqlog.Log, topic: str, starts: dict[int, int],
           ends: dict[int, int], on_corrupt: OnCorrupt = "raise"
           ) -> Iterator[tuple[int, Record]]:
    """``(partition, record)`` of every partition from its start up to its end
    (exclusive), merged in timestamp order (ties: partition, then offset)."""
    streams = [_keyed(log, topic, number, start, ends[number], on_corrupt)
               for number, start in starts.items() if start < ends[number]]
    for _timestamp, number, _offset, record in heapq.merge(*streams):
        yield number, record


def _keyed(log: mqlog.Log, topic: str, number: int, start: int, end: int,
           on_corrupt: OnCorrupt = "raise") -> Iterator[tuple[int, int, int, Record]]:
    """One partition's records with their merge key in front."""
    for record in log.iter(topic, number, start, end, on_corrupt=on_corrupt):
        timestamp, offset = record.timestamp, record.offset
        assert timestamp is not None and offset is not None  # read from the log
        yield timestamp, number, offset, record


# -- the options of the commands that print records ----------------------------------------

FormatOption = Annotated[RecordFormat, typer.Option(
    "--format", help="text: partition:offset, time, value; json: one object per record "
                     "(bytes in base64); raw: the value bytes only.")]
JsonFormatOption = Annotated[bool, typer.Option(
    "--json", help="Print one JSON object per record: the same as --format json.")]


def chosen_format(output_format: RecordFormat, json_output: bool) -> RecordFormat:
    """The record format of ``--format`` and its alias ``--json``; ``--json`` with
    another explicit format (raw) is a usage error."""
    if not json_output:
        return output_format
    if output_format is RecordFormat.raw:
        raise CliError("--json and --format raw exclude each other", EXIT_USAGE)
    return RecordFormat.json


KeyOption = Annotated[bool, typer.Option("--key", help="Show each record's key too.")]
HeadersOption = Annotated[bool, typer.Option("--headers", help="Show each record's headers too.")]
GrepOption = Annotated[str | None, typer.Option(
    "--grep", metavar="PATTERN",
    help="Only records whose value or key matches this regular expression.")]
