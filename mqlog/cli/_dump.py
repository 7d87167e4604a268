"""``mqlog dump FILE``: decode the batches (and records) of one segment file."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from mqlog.cli._app import EXIT_FAILED, EXIT_USAGE, CliError, app
from mqlog.cli._output import b64, console, emit_json, format_ms, short_repr
from mqlog.logstore.dump import DumpedBatch, DumpedRecord, NotASegmentError, dump_segment

_BATCH_COLUMNS = (
    f"{'position':>10}  {'base_offset':>12}  {'count':>6}  {'first_timestamp':<24}  "
    f"{'max_timestamp':<24}  {'length':>9}  checksum"
)


@app.command()
def dump(
    file: Annotated[Path, typer.Argument(help="A segment file (.log).", show_default=False)],
    records: Annotated[bool, typer.Option(
        "--records", "-r", help="Print every record of each batch too.",
    )] = False,
    json_output: Annotated[bool, typer.Option(
        "--json", help="One JSON object per line: each batch, then its records.",
    )] = False,
    width: Annotated[int, typer.Option(
        "--width", min=8, help="Cut keys and values to this many characters (not in --json).",
    )] = 60,
) -> None:
    """Decode a segment file: each batch's header and checksum, optionally its records.

    Reads the file only. Stops at the end of the written data; exits 1 when a
    batch fails its checksum or framing, 2 when the file is not a segment.
    """
    try:
        batches = dump_segment(file, records=records)
    except NotASegmentError as error:
        raise CliError(str(error), EXIT_USAGE) from None
    if not json_output:
        console.print(_BATCH_COLUMNS, markup=False, soft_wrap=True)
    count = record_count = bad = 0
    for batch in batches:
        count += 1
        record_count += batch.record_count if batch.valid and not batch.gap else 0
        bad += not batch.valid
        if json_output:
            _print_json(batch)
        else:
            _print_human(batch, width)
    if not json_output:
        console.print(f"{count} batches, {record_count} records, {bad} bad", soft_wrap=True)
    if bad:
        raise typer.Exit(EXIT_FAILED)


def _batch_fields(batch: DumpedBatch) -> dict:
    fields = dataclasses.asdict(batch)
    del fields["records"]
    return fields


def _record_fields(record: DumpedRecord) -> dict:
    return {
        "offset": record.offset, "timestamp": record.timestamp, "key": b64(record.key),
        "value": b64(record.value),
        "headers": {name: b64(value) for name, value in record.headers.items()},
    }


def _print_json(batch: DumpedBatch) -> None:
    emit_json({"type": "batch", **_batch_fields(batch)})
    for record in batch.records:
        emit_json({"type": "record", **_record_fields(record)})


def _print_human(batch: DumpedBatch, width: int) -> None:
    status = "ok" if batch.valid else f"BAD: {batch.error}"
    if batch.valid and batch.gap:
        status = f"gap: offsets {batch.base_offset}..{batch.next_offset - 1} recorded as missing"
    console.print(
        f"{batch.position:>10}  {batch.base_offset:>12}  {batch.record_count:>6}  "
        f"{format_ms(batch.first_timestamp):<24}  {format_ms(batch.max_timestamp):<24}  "
        f"{batch.batch_length:>9}  {status}",
        markup=False, soft_wrap=True,
    )
    for record in batch.records:
        parts = [f"{'':>10}  offset {record.offset}", format_ms(record.timestamp)]
        if record.key is not None:
            parts.append(f"key={short_repr(record.key, width)}")
        parts.append(f"value={short_repr(record.value, width)}")
        if record.headers:
            headers = {name: short_repr(value, width) for name, value in record.headers.items()}
            parts.append("headers={" + ", ".join(f"{k!r}: {v}" for k, v in headers.items()) + "}")
        console.print("  ".join(parts), markup=False, soft_wrap=True)
