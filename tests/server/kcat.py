"""kcat (Debian package ``kcat``, librdkafka inside) as a client in the server
tests: produce (``-P``), consume (``-C``, or a group with ``-G``) and metadata
(``-L``), each one kcat process with its output parsed; offsets by time
(``-Q``); and a group member that keeps consuming until the test stops or
kills it (:func:`group_member`).

Records go in as ``(key, value)`` text pairs, one per line on kcat's stdin
(``-K`` splits key from value at ``KEY_DELIMITER``; a line without the
delimiter is a record with a null key), so keys and values may not contain a
newline. Consumed records come back from kcat's JSON envelope (``-J``) as
:class:`KcatRecord`. A kcat exit status other than 0, or a timeout, raises
:class:`KcatError` with kcat's stderr.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._members import MemberProcess
from ._tools import require_program

KEY_DELIMITER = "\t"
TIMEOUT_S = 30.0


class KcatError(RuntimeError):
    """kcat exited with an error or did not finish in time."""


@dataclass(frozen=True)
class KcatRecord:
    """One consumed record, as kcat's JSON envelope gives it (``ts``: ms since
    the epoch; ``headers``: (name, value) pairs in order, repeats kept)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: str | None
    value: str | None
    headers: tuple[tuple[str, str | None], ...]


def run(arguments: Sequence[str], stdin: str | None = None,
        timeout_s: float = TIMEOUT_S) -> str:
    """Run ``kcat arguments``; its stdout. kcat must be installed (the test
    fails otherwise, see tests/server/_tools.py)."""
    command = [require_program("kcat"), *arguments]
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as error:
        raise KcatError(f"{' '.join(command)} did not finish in {timeout_s:g} s; "
                        f"stderr: {_text(error.stderr)}") from error
    if done.returncode != 0:
        raise KcatError(f"{' '.join(command)} exited with {done.returncode}: {done.stderr}")
    return done.stdout


def _text(output: bytes | str | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def _settings(config: Mapping[str, str] | None) -> list[str]:
    return [word for name, value in (config or {}).items() for word in ("-X", f"{name}={value}")]


def produce(broker: str, topic: str, records: Sequence[tuple[str | None, str]], *,
            partition: int | None = None, headers: Mapping[str, str] | None = None,
            acks: int | None = None, compression: str | None = None,
            config: Mapping[str, str] | None = None) -> None:
    """Produce ``records`` (key, value) with one ``kcat -P``; ``headers`` go on
    every record; returns once kcat has every delivery report."""
    lines = []
    for key, value in records:
        if "\n" in value or (key is not None and ("\n" in key or KEY_DELIMITER in key)):
            raise ValueError(f"kcat cannot carry this record on one line: {(key, value)!r}")
        lines.append(value if key is None else f"{key}{KEY_DELIMITER}{value}")
    arguments = ["-P", "-b", broker, "-t", topic, "-K", KEY_DELIMITER]
    if partition is not None:
        arguments += ["-p", str(partition)]
    for name, value in (headers or {}).items():
        arguments += ["-H", f"{name}={value}"]
    if acks is not None:
        arguments += ["-X", f"acks={acks}"]
    if compression is not None:
        arguments += ["-z", compression]
    run(arguments + _settings(config), stdin="".join(f"{line}\n" for line in lines))


def parse_records(output: str) -> list[KcatRecord]:
    """kcat's ``-J`` lines (``{"topic", "partition", "offset", "ts", "headers":
    [name, value, ...], "key", "payload"}``) as records."""
    records = []
    for line in output.splitlines():
        if not line.strip():
            continue
        envelope = json.loads(line)
        flat = envelope.get("headers") or []
        records.append(KcatRecord(
            topic=envelope["topic"], partition=envelope["partition"],
            offset=envelope["offset"], timestamp_ms=envelope.get("ts", -1),
            key=envelope.get("key"), value=envelope.get("payload"),
            headers=tuple(zip(flat[0::2], flat[1::2]))))
    return records


def consume(broker: str, topic: str, count: int, *, partition: int | None = None,
            offset: str = "beginning", timeout_s: float = TIMEOUT_S,
            config: Mapping[str, str] | None = None) -> list[KcatRecord]:
    """``count`` records of ``topic`` with ``kcat -C`` (no group) from ``offset``
    (``beginning``, ``end``, ``stored``, a number, ``-N`` from the end or
    ``s@<ms>`` by timestamp), every partition or just ``partition``."""
    arguments = ["-C", "-J", "-b", broker, "-t", topic, "-o", offset, "-c", str(count)]
    if partition is not None:
        arguments += ["-p", str(partition)]
    return parse_records(run(arguments + _settings(config), timeout_s=timeout_s))


def consume_group(broker: str, group: str, topics: Sequence[str], count: int, *,
                  timeout_s: float = TIMEOUT_S,
                  config: Mapping[str, str] | None = None) -> list[KcatRecord]:
    """``count`` records as a member of consumer group ``group`` (``kcat -G``),
    from the earliest offset when the group has none committed."""
    settings = {"auto.offset.reset": "earliest", **(config or {})}
    arguments = ["-J", "-b", broker, "-c", str(count), *_settings(settings), "-G", group,
                 *topics]
    return parse_records(run(arguments, timeout_s=timeout_s))


def group_member(broker: str, group: str, topics: Sequence[str], client_id: str, *,
                 config: Mapping[str, str] | None = None) -> MemberProcess[KcatRecord]:
    """A ``kcat -G`` process that stays in ``group`` and prints every record it
    reads (unbuffered) until it is stopped; from the earliest offset when the
    group has none committed. ``client_id`` starts its member id in mqlog's
    view of the group (``<client.id>-<hex>``)."""
    settings = {"auto.offset.reset": "earliest", "client.id": client_id, **(config or {})}
    command = [require_program("kcat"), "-u", "-J", "-b", broker, *_settings(settings),
               "-G", group, *topics]
    return MemberProcess(command, _record_line)


def _record_line(line: str) -> KcatRecord | None:
    records = parse_records(line)
    return records[0] if records else None


def offset_for_time(broker: str, topic: str, partition: int, timestamp_ms: int) -> int:
    """``kcat -Q``: the offset of the first record of ``topic``/``partition``
    at or after ``timestamp_ms`` (ListOffsets by time; ``-1``: none that late)."""
    answer = json.loads(run(["-Q", "-J", "-b", broker, "-t",
                             f"{topic}:{partition}:{timestamp_ms}"]))
    return int(answer[topic][str(partition)]["offset"])


def metadata(broker: str, topic: str | None = None, timeout_s: float = 10.0) -> dict:
    """The cluster's metadata from ``kcat -L -J`` (``brokers``, ``topics`` with
    their ``partitions``)."""
    arguments = ["-L", "-J", "-b", broker, "-m", f"{timeout_s:g}"]
    if topic is not None:
        arguments += ["-t", topic]
    return json.loads(run(arguments, timeout_s=timeout_s + 5))
