"""``mqlog produce TOPIC``: send one record per line of stdin."""

from __future__ import annotations

import base64
import binascii
import collections
import dataclasses
import enum
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from mqlog.cli._app import EXIT_USAGE, CliError, app, open_log
from mqlog.cli._options import JSON_OPTION
from mqlog.cli._output import console, emit_json
from mqlog.producer import Delivery


class InputFormat(str, enum.Enum):
    """What one line of stdin is."""

    text = "text"
    json = "json"


@dataclasses.dataclass(frozen=True)
class Line:
    """One parsed input line: what ``Producer.send`` takes."""

    value: bytes
    key: bytes | None = None
    headers: dict[str, bytes] | None = None
    partition: int | None = None
    timestamp: int | None = None


@app.command()
def produce(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="Topic name.", show_default=False)],
    input_format: Annotated[InputFormat, typer.Option(
        "--format", help="text: each line is a value (see --key-sep); json: each line is "
                         "an object with value and optionally key, headers, partition, "
                         "timestamp.")] = InputFormat.text,
    key_sep: Annotated[str | None, typer.Option(
        "--key-sep", metavar="SEP",
        help="text: split each line at the first SEP into key and value.",
        show_default=False)] = None,
    base64_input: Annotated[bool, typer.Option(
        "--base64", help="json: value, key and header values are base64 (as tail "
                         "--format json prints them).")] = False,
    partition: Annotated[int | None, typer.Option(
        "--partition", "-p", help="Send every record to this partition (default: by key, "
                                  "keyless records spread).", show_default=False)] = None,
    header: Annotated[list[str] | None, typer.Option(
        "--header", "-H", metavar="NAME=VALUE", help="Add this header to every record "
                                                     "(repeat for several).",
        show_default=False)] = None,
    key: Annotated[str | None, typer.Option(
        "--key", "-k", metavar="KEY", help="The key of every record whose line gives none "
                                           "(like kcat -k).", show_default=False)] = None,
    json_output: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Send each line of stdin as one record (empty lines are skipped).

    Records are sent as they are read, so ``... | mqlog produce T`` streams.
    With --json, prints where each record was written, in input order.
    """
    extra = _headers(header or [])
    parse = _json_line(base64_input) if input_format is InputFormat.json else _text_line(
        key_sep.encode() if key_sep else None)
    pending: collections.deque[Delivery] = collections.deque()
    count = 0
    default_key = None if key is None else key.encode()
    with open_log(ctx) as log, log.producer() as producer:
        # The target exists before a line is read: UnknownTopicError, UnknownPartitionError.
        log.end_offset(topic, 0 if partition is None else partition)
        for number, raw in enumerate(sys.stdin.buffer, 1):
            data = raw.rstrip(b"\n").rstrip(b"\r")
            if not data:
                continue
            try:
                line = parse(data)
            except ValueError as error:
                raise CliError(f"line {number}: {error} ({count} records sent before it)",
                               EXIT_USAGE) from None
            headers = {**(line.headers or {}), **extra}
            pending.append(producer.send(
                topic, line.value, key=default_key if line.key is None else line.key,
                headers=headers or None,
                partition=line.partition if partition is None else partition,
                timestamp=line.timestamp))
            count += 1
            _report_done(pending, json_output, wait=False)
        producer.flush()
        _report_done(pending, json_output, wait=True)
    if not json_output:
        console.print(f"produced {count} records to {topic!r}", markup=False, soft_wrap=True)


def _report_done(pending: collections.deque[Delivery], json_output: bool, wait: bool) -> None:
    """Check (and with --json print) the deliveries done so far, in input order; a
    failed delivery raises its error."""
    while pending and (wait or pending[0].done()):
        metadata = pending.popleft().result()
        if json_output:
            emit_json(metadata._asdict())
            sys.stdout.flush()  # a reader of a pipe sees each record as it is written


def _headers(pairs: list[str]) -> dict[str, bytes]:
    headers = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise typer.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="'--header'")
        headers[name] = value.encode()
    return headers


def _text_line(key_sep: bytes | None) -> Callable[[bytes], Line]:
    """The parser of text lines: the whole line is the value, or KEY SEP VALUE."""

    def parse(data: bytes) -> Line:
        if key_sep is not None and key_sep in data:
            key, _sep, value = data.partition(key_sep)
            return Line(value, key)
        return Line(data)

    return parse


def _json_line(base64_input: bool) -> Callable[[bytes], Line]:
    """The parser of JSON lines (strings UTF-8, or base64 with ``base64_input``)."""

    def as_bytes(field: str, text: Any) -> bytes:
        if not isinstance(text, str):
            raise ValueError(f"{field} must be a string, not {json.dumps(text)}")
        if not base64_input:
            return text.encode()
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error:
            raise ValueError(f"{field} is not base64: {text!r}") from None

    def parse(data: bytes) -> Line:
        try:
            document = json.loads(data)
        except json.JSONDecodeError as error:
            raise ValueError(f"not valid JSON: {error}") from None
        if not isinstance(document, dict) or "value" not in document:
            raise ValueError('expected an object with a "value"')
        value = document["value"]
        if not isinstance(value, str) and not base64_input:
            value = json.dumps(value, separators=(",", ":"))  # a JSON value as its text
        key = document.get("key")
        headers = document.get("headers") or {}
        if not isinstance(headers, dict):
            raise ValueError("headers must be an object of strings")
        partition, timestamp = document.get("partition"), document.get("timestamp")
        for field, number in (("partition", partition), ("timestamp", timestamp)):
            if number is not None and (not isinstance(number, int) or isinstance(number, bool)):
                raise ValueError(f"{field} must be an integer, not {json.dumps(number)}")
        return Line(as_bytes("value", value), None if key is None else as_bytes("key", key),
                    {name: as_bytes(f"header {name!r}", text) for name, text in headers.items()},
                    partition, timestamp)

    return parse
