"""Option types shared by the commands: durations, moments in time, rates,
options whose value may be left out, and flags shown without a value in ``--help``.

The parsers raise ``typer.BadParameter``, which the app turns into one line
``mqlog: error: Invalid value for '--since': ...`` and exit code 2.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

if TYPE_CHECKING:
    from typer._click import Context

#: ``--json`` of every command that prints data.
JSON_OPTION = typer.Option("--json", help="Print one JSON object per line.")

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
            "w": 604_800_000}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION = re.compile(rf"(?:{_DURATION_PART.pattern})+")
_RATE = re.compile(r"(\d+(?:\.\d+)?)(?:/s)?")


def parse_duration(text: str) -> datetime.timedelta:
    """``15m``, ``2h``, ``1d``, ``1h30m``, ``500ms``, ``2.5s`` as a timedelta."""
    cleaned = text.strip().lower()
    if not _DURATION.fullmatch(cleaned):
        raise typer.BadParameter(
            f"{text!r} is not a duration: use a number and a unit (ms, s, m, h, d, w), "
            f"e.g. 15m, 2h, 1d, 1h30m")
    ms = sum(float(number) * _UNIT_MS[unit] for number, unit in
             _DURATION_PART.findall(cleaned))
    return datetime.timedelta(milliseconds=ms)


def parse_datetime(text: str) -> datetime.datetime:
    """An ISO 8601 date or date and time; without a zone it is local time."""
    cleaned = text.strip()
    if cleaned[-1:] in ("Z", "z"):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        return datetime.datetime.fromisoformat(cleaned)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 date and time, e.g. 2026-11-22T18:15:00, "
            f"2026-11-22 18:15:00+01:00 or 2026-11-22T17:15:00Z") from None


def epoch_ms(moment: datetime.datetime) -> int:
    """A datetime as ms since the epoch (naive: local time)."""
    return int(moment.timestamp() * 1000)


@dataclasses.dataclass(frozen=True)
class Moment:
    """A point in time given either as a duration ago or as a datetime."""

    ago: datetime.timedelta | None = None
    at: datetime.datetime | None = None

    def epoch_ms(self, now_ms: int) -> int:
        if self.at is not None:
            return epoch_ms(self.at)
        assert self.ago is not None
        return now_ms - int(self.ago.total_seconds() * 1000)


def parse_moment(text: str) -> Moment:
    """A duration ago (``15m``) or an ISO 8601 datetime."""
    if _DURATION.fullmatch(text.strip().lower()):
        return Moment(ago=parse_duration(text))
    try:
        return Moment(at=parse_datetime(text))
    except typer.BadParameter:
        raise typer.BadParameter(
            f"{text!r} is neither a duration (15m, 2h, 1d) nor an ISO 8601 date and time "
            f"(2026-11-22T18:15:00)") from None


def parse_rate(text: str) -> float:
    """Records per second: ``500`` or ``500/s`` (more than 0)."""
    match = _RATE.fullmatch(text.strip().lower())
    if match is None or float(match.group(1)) <= 0:
        raise typer.BadParameter(f"{text!r} is not a rate: use records per second, e.g. "
                                 f"500 or 500/s")
    return float(match.group(1))


class OptionalValueCommand(TyperCommand):
    """A command whose options in :attr:`optional_values` may be given without a
    value (``--watch`` alone means ``--watch 2``): click has no such options, so
    the default value is inserted before parsing when the next word is not a
    number."""

    optional_values: dict[str, str] = {}

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        completed: list[str] = []
        for index, word in enumerate(args):
            completed.append(word)
            if word in self.optional_values and not _is_number(args[index + 1:index + 2]):
                completed.append(self.optional_values[word])
        return super().parse_args(ctx, completed)


def _is_number(words: list[str]) -> bool:
    if not words:
        return False
    try:
        float(words[0])
    except ValueError:
        return False
    return True


def hide_flag_types(command: TyperCommand | TyperGroup, ctx: Context) -> None:
    """Show every flag of ``command`` and of its subcommands, ``--help`` included,
    without a type in ``--help``: typer's rich help prints ``<bool>`` after a
    flag (``--follow <bool>``), as if it took a value. An option's metavar is
    what the help shows in place of its type; a flag's is set to nothing.
    ``ctx`` is the context ``command`` runs in (subcommands get theirs from it,
    so that they see the same help option names as when they run)."""
    for param in command.get_params(ctx):
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    if isinstance(command, TyperGroup):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if isinstance(sub, (TyperCommand, TyperGroup)):
                hide_flag_types(sub, typer.Context(sub, info_name=name, parent=ctx))
