"""``mqlog replay TOPIC``: re-publish a range of a topic, or pipe it to a command.

The range is fixed when the command starts (records appended later are not
part of it), so a replay always ends. Partitions are merged in timestamp
order. A copy keeps each record's key and headers and adds two headers:
``mqlog.timestamp`` (the original timestamp, ms since the epoch, as decimal
text; the copy gets the time of its append) and ``mqlog.origin``
(``topic/partition/offset`` of the original).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

import mqlog
from mqlog import Record
from mqlog.cli._app import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, CliError, app, open_log
from mqlog.cli._options import (
    JSON_OPTION,
    Moment,
    epoch_ms,
    parse_datetime,
    parse_duration,
    parse_moment,
    parse_rate,
)
from mqlog.cli._output import console, emit_json, err_console
from mqlog.cli._records import (
    check_window,
    merged,
    offset_positions,
    partitions_of,
    record_json,
)
from mqlog.cli._signals import stopping_on
from mqlog.errors import UnknownTopicError
from mqlog.headers import REPLAY_ORIGIN, REPLAY_TIMESTAMP
from mqlog.producer import key_partition

#: Records a copy buffers per destination partition before appending them.
COPY_BATCH = 500
#: Records between two progress bar updates.
PROGRESS_STEP = 200
#: Bytes of JSON lines gathered before they are written to an --exec command.
EXEC_BUFFER_BYTES = 64 * 1024
#: Longest one wait for an --exec command to read from a full pipe (the main
#: thread handles signals between two).
EXEC_WAIT_STEP_S = 0.1


@dataclasses.dataclass(frozen=True)
class Range:
    """What to replay: per partition, offsets from ``starts`` up to ``ends`` (exclusive)."""

    topic: str
    starts: dict[int, int]
    ends: dict[int, int]

    @property
    def size(self) -> int:
        """Offsets in the range (records, unless compaction removed some)."""
        return sum(self.ends[number] - start for number, start in self.starts.items())


class _Copy:
    """Appends replayed records to a topic, in batches per partition."""

    def __init__(self, log: mqlog.Log, topic: str, source_partitions: int) -> None:
        self.log = log
        self.topic = topic
        self.partitions = len(log.describe_topic(topic).partitions)
        self.keep_partitions = self.partitions == source_partitions
        self.buffers: dict[int, list[Record]] = {}
        self.keyless = 0

    def send(self, source: str, partition: int, record: Record) -> None:
        assert record.timestamp is not None  # read from the log
        headers = {**(record.headers or {}), REPLAY_TIMESTAMP: b"%d" % record.timestamp,
                   REPLAY_ORIGIN: f"{source}/{partition}/{record.offset}".encode()}
        target = self._partition(partition, record.key)
        buffer = self.buffers.setdefault(target, [])
        buffer.append(Record(bytes(record.value), key=None if record.key is None
                             else bytes(record.key), headers=headers))
        if len(buffer) >= COPY_BATCH:
            self._append(target)

    def _partition(self, source_partition: int, key: bytes | None) -> int:
        """The source partition when the counts match (keeps the order), else by key;
        keyless records in turn."""
        if self.keep_partitions:
            return source_partition
        if key is not None:
            return key_partition(bytes(key), self.partitions)
        self.keyless += 1
        return self.keyless % self.partitions

    def _append(self, target: int) -> None:
        records = self.buffers.pop(target, [])
        if records:
            self.log.append(self.topic, target, records)

    def flush(self) -> None:
        for target in list(self.buffers):
            self._append(target)

    def close(self) -> None:
        self.flush()


class _Exec:
    """Pipes replayed records as JSON lines to a shell command's stdin.

    The lines are written by this class, not through a buffered file: the pipe
    is non-blocking and a full pipe is waited on in steps of EXEC_WAIT_STEP_S,
    so the main thread runs Python between them and a second Ctrl-C
    (``stopping_on``) interrupts a command that stopped reading, even when
    the signal reached another thread. Nothing is left buffered for the
    interpreter's exit to flush into a pipe nobody reads."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.process = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE)
        assert self.process.stdin is not None  # stdin=PIPE
        self.stdin = self.process.stdin
        self.fd = self.stdin.fileno()
        os.set_blocking(self.fd, False)
        self.pending = bytearray()
        self.sent = 0

    def send(self, source: str, partition: int, record: Record) -> None:
        line = json.dumps(record_json(source, partition, record), separators=(",", ":"))
        self.pending += line.encode()
        self.pending += b"\n"
        self.sent += 1
        if len(self.pending) >= EXEC_BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write every pending line, waiting while the pipe is full."""
        while self.pending:
            try:
                written = os.write(self.fd, self.pending)
            except BlockingIOError:
                select.select([], [self.fd], [], EXEC_WAIT_STEP_S)
                continue
            except BrokenPipeError:
                self._failed()
            del self.pending[:written]

    def close(self) -> None:
        """Write what is pending, close the command's stdin and wait for it; fail
        unless it exits with 0."""
        self.flush()
        self.stdin.close()
        if self.process.wait() != 0:
            self._failed()

    def stop_on_error(self, kind: type[BaseException] | None, _error: object,
                      _trace: object) -> None:
        """On an exception out of the replay (a second Ctrl-C while the command
        does not read, or a failure): kill the command if it still runs, so that
        nothing waits on it (an ExitStack exit callback)."""
        if kind is None:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.stdin.close()

    def _failed(self) -> None:
        """The command exited or closed its stdin before the end: say how."""
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        what = f"exited with code {code}" if code else "stopped reading"
        raise CliError(f"command {self.command!r} {what} after {self.sent} records",
                       EXIT_FAILED)


@app.command()
def replay(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="Topic to replay.", show_default=False)],
    partition: Annotated[int | None, typer.Option(
        "--partition", "-p", help="Only this partition (default: all, merged by time).",
        show_default=False)] = None,
    from_offset: Annotated[int | None, typer.Option(
        "--from-offset", min=0, metavar="N", help="Start at offset N (of each partition).",
        show_default=False)] = None,
    since: Annotated[datetime.timedelta | None, typer.Option(
        "--since", parser=parse_duration, metavar="DURATION",
        help="Start DURATION ago: 15m, 2h, 1d.", show_default=False)] = None,
    at: Annotated[datetime.datetime | None, typer.Option(
        "--at", parser=parse_datetime, metavar="ISO-8601",
        help="Start at the first record at or after this time.", show_default=False)] = None,
    until: Annotated[Moment | None, typer.Option(
        "--until", parser=parse_moment, metavar="TIME",
        help="Stop before the first record at or after TIME: an ISO 8601 time or a "
             "duration ago (5m).", show_default=False)] = None,
    until_offset: Annotated[int | None, typer.Option(
        "--until-offset", min=0, metavar="N", help="Stop before offset N (of each partition).",
        show_default=False)] = None,
    to_topic: Annotated[str | None, typer.Option(
        "--to-topic", metavar="TOPIC", help="Append the records to TOPIC (created like the "
                                            "source if missing).", show_default=False)]
    = None,
    to_dir: Annotated[Path | None, typer.Option(
        "--to-dir", metavar="DIR", help="With --to-topic: the log directory of TOPIC "
                                        "(default: --dir; created if missing).",
        show_default=False)] = None,
    exec_command: Annotated[str | None, typer.Option(
        "--exec", metavar="CMD", help="Pipe the records to the shell command CMD, one JSON "
                                      "object per line (as tail --format json).",
        show_default=False)] = None,
    rate: Annotated[float | None, typer.Option(
        "--rate", parser=parse_rate, metavar="N/s", help="At most N records per second.",
        show_default=False)] = None,
    json_output: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Re-publish a range of a topic, or pipe it to a command as JSON lines.

    The copy goes to another topic, here or in another log directory. A
    progress bar on stderr shows how far it got.
    """
    _check_choices(from_offset, since, at, to_topic, to_dir, exec_command)
    began = time.monotonic()
    with open_log(ctx) as log, ExitStack() as stack:
        numbers = partitions_of(log, topic, partition)
        chosen = _range(log, topic, numbers, from_offset, since, at, until, until_offset,
                        strict=partition is not None)
        sink: _Copy | _Exec
        if exec_command is not None:
            sink = _Exec(exec_command)
            stack.push(sink.stop_on_error)
        else:
            assert to_topic is not None  # _check_choices: --to-topic or --exec
            sink = _copy(stack, log, topic, to_topic, to_dir, len(numbers))
        sent, interrupted = _run(log, chosen, sink, rate)
    summary = {"type": "replay", "topic": topic, "partitions": sorted(chosen.starts),
               "records": sent, "offsets": chosen.size, "interrupted": interrupted,
               "seconds": round(time.monotonic() - began, 3),
               "destination": exec_command if exec_command is not None else to_topic}
    _print_summary(summary, json_output)
    if interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)


def _check_choices(from_offset: int | None, since: object, at: object, to_topic: str | None,
                   to_dir: Path | None, exec_command: str | None) -> None:
    starts = [given for given in (from_offset, since, at) if given is not None]
    if len(starts) != 1:
        raise CliError("give exactly one of --from-offset, --since, --at", EXIT_USAGE)
    if (to_topic is None) == (exec_command is None):
        raise CliError("give exactly one of --to-topic, --exec", EXIT_USAGE)
    if to_dir is not None and to_topic is None:
        raise CliError("--to-dir needs --to-topic", EXIT_USAGE)


def _range(log: mqlog.Log, topic: str, numbers: list[int], from_offset: int | None,
           since: datetime.timedelta | None, at: datetime.datetime | None,
           until: Moment | None, until_offset: int | None, strict: bool) -> Range:
    now = log.now_ms()
    moment = stop = None
    if at is not None:
        moment = epoch_ms(at)
    elif since is not None:  # _check_choices: exactly one of the three starts
        moment = now - int(since.total_seconds() * 1000)
    if until is not None:
        stop = until.epoch_ms(now)
    check_window(moment, stop)
    if moment is not None:
        starts = {n: log.offset_for_time(topic, n, moment) for n in numbers}
    else:
        assert from_offset is not None  # _check_choices: exactly one of the three starts
        starts = offset_positions(log, topic, numbers, from_offset, strict)
    ends = {n: log.end_offset(topic, n) for n in numbers}
    if stop is not None:
        ends = {n: min(end, log.offset_for_time(topic, n, stop)) for n, end in ends.items()}
    if until_offset is not None:
        ends = {n: min(end, until_offset) for n, end in ends.items()}
    return Range(topic, starts, {n: max(end, starts[n]) for n, end in ends.items()})


def _copy(stack: ExitStack, log: mqlog.Log, topic: str, to_topic: str, to_dir: Path | None,
          source_partitions: int) -> _Copy:
    """The copy sink: the destination log (opened on ``stack``) and topic, created
    with the source's partition count and config if missing."""
    target = log
    if to_dir is not None and os.path.abspath(to_dir) != log.path:
        target = stack.enter_context(mqlog.open(to_dir))
    if target.path == log.path and to_topic == topic:
        raise CliError(f"cannot replay {topic!r} into itself", EXIT_USAGE)
    try:
        target.describe_topic(to_topic)
    except UnknownTopicError:
        source = log.describe_topic(topic)
        target.create_topic(to_topic, len(source.partitions),
                            **dataclasses.asdict(source.config))
        err_console.print(f"created topic {to_topic!r} in {target.path} with "
                          f"{len(source.partitions)} partitions", markup=False, soft_wrap=True)
    return _Copy(target, to_topic, source_partitions)


def _run(log: mqlog.Log, chosen: Range, sink: _Copy | _Exec,
         rate: float | None) -> tuple[int, bool]:
    """Send the range to ``sink`` at most ``rate`` records/s; return (records sent,
    whether Ctrl-C stopped it). Ctrl-C stops it between two records (never inside
    a send or an append), so the count is exactly what the sink got."""
    sent = 0
    began = time.monotonic()
    stop = threading.Event()
    with _progress(chosen.size) as advance, stopping_on(stop, (signal.SIGINT,)):
        for number, record in merged(log, chosen.topic, chosen.starts, chosen.ends):
            if rate is not None:
                _throttle(sink, began, sent, rate, stop)
            if stop.is_set():
                break
            sink.send(chosen.topic, number, record)
            sent += 1
            if sent % PROGRESS_STEP == 0:
                advance(sent)
        interrupted = stop.is_set()
        try:
            sink.close()
        except CliError:
            if not interrupted:
                raise  # after Ctrl-C the command was interrupted too: not its failure
        # The range counts offsets; a compacted topic has fewer records: end at the count.
        advance(sent, None if interrupted else sent)
    return sent, interrupted


def _throttle(sink: _Copy | _Exec, began: float, sent: int, rate: float,
              stop: threading.Event) -> None:
    """Wait until record number ``sent`` is due (after handing over what is
    buffered), or ``stop`` is set."""
    ahead = began + sent / rate - time.monotonic()
    if ahead > 0:
        sink.flush()
        stop.wait(ahead)


@contextmanager
def _progress(total: int) -> Iterator:
    """A progress bar with ETA on stderr; yields ``advance(records_done, total=None)``
    (a total given replaces the first estimate)."""
    columns = (TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TextColumn("eta"),
               TimeRemainingColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console) as bar:
        task = bar.add_task("replay", total=total)
        yield lambda done, total=None: bar.update(task, completed=done, total=total)


def _print_summary(summary: dict, json_output: bool) -> None:
    if json_output:
        emit_json(summary)
        return
    state = "interrupted after" if summary["interrupted"] else "replayed"
    console.print(f"{state} {summary['records']:,} records of {summary['topic']!r} "
                  f"(partitions {', '.join(map(str, summary['partitions']))}) to "
                  f"{summary['destination']!r} in {summary['seconds']:.2f} s",
                  markup=False, soft_wrap=True)
