"""``-F/--format-string``: records printed through a template, in the spirit of
kcat's ``-f``.

Tokens: ``%t`` topic, ``%p`` partition, ``%o`` offset, ``%k`` key, ``%s``
value, ``%K`` key size in bytes (``-1`` when there is no key), ``%S`` value size
in bytes, ``%T`` timestamp (ms since the epoch), ``%h`` headers
(``name=value,...``), ``%%`` a percent sign. Escapes: ``\\n``, ``\\t``,
``\\r``, ``\\\\``. Keys, values and header values are written as their
bytes, unchanged (an absent key as nothing). A newline ends each record
unless the template itself ends with ``\\n`` (so kcat's ``-f '%s\\n'`` prints
the same lines).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from mqlog import Record
from mqlog.cli._app import EXIT_USAGE, CliError
from mqlog.cli._records import RecordFormat

#: What each ``%`` token prints: a function of (topic, partition, record).
_TOKENS: dict[str, Callable[[str, int, Record], bytes]] = {
    "t": lambda topic, partition, record: topic.encode(),
    "p": lambda topic, partition, record: b"%d" % partition,
    # Records read from the log: their offset and timestamp are set.
    "o": lambda topic, partition, record: b"%d" % record.offset,  # type: ignore[str-format]
    "k": lambda topic, partition, record: bytes(record.key or b""),
    "s": lambda topic, partition, record: bytes(record.value),
    "K": lambda topic, partition, record: b"%d" % (-1 if record.key is None
                                                  else len(record.key)),
    "S": lambda topic, partition, record: b"%d" % len(record.value),
    "T": lambda topic, partition, record: b"%d" % record.timestamp,  # type: ignore[str-format]
    "h": lambda topic, partition, record: b",".join(
        name.encode() + b"=" + bytes(value) for name, value in (record.headers or {}).items()),
}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


class FormatString:
    """A parsed template: literal bytes and tokens, checked once (a bad one raises
    ``typer.BadParameter``, a usage error)."""

    def __init__(self, template: str) -> None:
        self.template = template
        #: Literal bytes, or the token letter of a field.
        self.parts: list[bytes | str] = []
        literal: list[str] = []
        index = 0
        while index < len(template):
            char = template[index]
            following = template[index + 1:index + 2]
            if char == "%" and following == "%" or char == "\\" and following in _ESCAPES:
                literal.append("%" if char == "%" else _ESCAPES[following])
                index += 2
            elif char == "%":
                if following not in _TOKENS:
                    raise typer.BadParameter(
                        f"unknown token %{following} in {template!r}: use %t %p %o %k %s %K "
                        f"%S %T %h or %%", param_hint="'--format-string'")
                if literal:
                    self.parts.append("".join(literal).encode())
                    literal = []
                self.parts.append(following)
                index += 2
            else:
                literal.append(char)
                index += 1
        if literal:
            self.parts.append("".join(literal).encode())
        last = self.parts[-1] if self.parts else b""
        if not (isinstance(last, bytes) and last.endswith(b"\n")):
            self.parts.append(b"\n")

    def render(self, topic: str, partition: int, record: Record) -> bytes:
        """The bytes printed for one record."""
        return b"".join(part if isinstance(part, bytes) else _TOKENS[part](topic, partition,
                                                                           record)
                        for part in self.parts)


def parse_format_string(text: str) -> FormatString:
    """The typer parser of ``--format-string``."""
    return FormatString(text)


FormatStringOption = Annotated[FormatString | None, typer.Option(
    "--format-string", "-F", parser=parse_format_string, metavar="FORMAT",
    help="Print each record through FORMAT, as kcat -f: %t topic, %p partition, %o offset, "
         "%k key, %s value, %K/%S key/value size, %T timestamp (ms), %h headers, %%; "
         "escapes \\n \\t \\r \\\\.", show_default=False)]


def check_format_choice(template: FormatString | None, output_format: RecordFormat,
                        key: bool, headers: bool) -> None:
    """-F says everything printed: --format (other than the default), --key and
    --headers beside it are a usage error."""
    if template is None:
        return
    clashing = [name for name, given in (("--format", output_format is not RecordFormat.text),
                                         ("--key", key), ("--headers", headers)) if given]
    if clashing:
        raise CliError(f"--format-string says what is printed: drop {', '.join(clashing)}",
                       EXIT_USAGE)
