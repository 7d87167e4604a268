"""Output helpers shared by the commands: consoles, JSON lines, value formatting.

Data goes to stdout, messages and progress to stderr, so ``--json`` output
can be piped as is. The consoles look up ``sys.stdout``/``sys.stderr`` at
each write, so tests that swap the streams see the output.

Tables never cut a number, an id or a time. Printed to a terminal, a table is
drawn with borders and laid out here, not by rich (whose layout cuts cells
with an ellipsis): when the terminal is narrow, columns of text wrap at spaces
down to their longest word, then headings fold if that makes the table fit,
and a table that cannot fit even so is drawn wider than the terminal (which
folds the lines) rather than cut. Printed
anywhere else (a pipe, a file), a table is plain text for ``grep``, ``awk``
and ``sort``: its title on a line of its own, then the header and the rows as
columns separated by two spaces, aligned, never wrapped, never cut.
"""

from __future__ import annotations

import base64
import datetime
import errno
import json
import sys
from collections.abc import Mapping
from typing import Any

from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.segment import Segments
from rich.table import Table
from rich.text import Text

#: Separates the columns of a plain table.
PLAIN_SEPARATOR = "  "


class TableConsole(Console):
    """A console that prints tables without cutting them (see the module docstring)."""

    def on_broken_pipe(self) -> None:
        """The reader went away: stop writing, and raise for the app to exit quietly
        with its closed-pipe code (rich's own handling exits 1)."""
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, "the reader of the output went away")

    def print(self, *objects: Any, **options: Any) -> None:
        if len(objects) == 1 and isinstance(objects[0], Group):
            for renderable in objects[0].renderables:
                self.print(renderable, **options)
        elif len(objects) == 1 and isinstance(objects[0], Table):
            self._print_table(objects[0], **options)
        else:
            super().print(*objects, **options)

    def _print_table(self, table: Table, **options: Any) -> None:
        """Print ``table`` plain, or at a terminal with the widths of
        :func:`_fitted_widths` (set on its columns)."""
        if not self.is_terminal:
            for line in plain_table(self, table):
                super().print(line, markup=False, highlight=False, soft_wrap=True,
                              crop=False)
            return
        widths = _fitted_widths(self, table)
        for column, width in zip(table.columns, widths):
            # Rows fit their width; a heading narrower than its text folds.
            column.width, column.overflow, column.no_wrap = width, "fold", False
        needed = Measurement.get(self, self.options.update(width=10**6), table).minimum
        if needed <= self.width:
            super().print(table, **options)
            return
        # Wider than the terminal: rendered whole (the terminal folds the lines), not cut.
        rendered = self.render(table, self.options.update(width=needed))
        super().print(Segments(list(rendered)), crop=False)


def _fitted_widths(console: Console, table: Table) -> list[int]:
    """Column widths for ``console``'s width. Each column starts as wide as its
    content; while the table is too wide, the widest column of text (rows of
    several words) narrows, down to its longest word; then, only if that makes the
    table fit, headings wider than their column's rows fold. A number, id or time
    is never narrowed: a table that cannot fit keeps its width (see above)."""
    columns = _columns(console, table, one_line=False)
    rows = [cells[1:] if table.show_header else cells for cells in columns]
    widest = [max((cell_len(line) for cell in cells for line in cell.splitlines()),
                  default=1) for cells in columns]
    longest_word = [max((cell_len(word) for cell in cells for word in cell.split()), default=1)
                    for cells in rows]
    longest_row = [max((cell_len(line) for cell in cells for line in cell.splitlines()),
                       default=1) for cells in rows]
    for column in table.columns:
        column.width = 1
    borders = Measurement.get(console, console.options.update(width=10**6), table).minimum
    excess = sum(widest) + borders - len(widest) - console.width
    widths = list(widest)
    text = [max(len(cell.split()) for cell in cells) > 1 if cells else False for cells in rows]
    texts = [index for index, is_text in enumerate(text) if is_text]
    excess = _narrow(widths, texts, [longest_word[index] for index in texts], excess)
    headings_slack = sum(max(width - max(longest_row[index], 1), 0)
                         for index, width in enumerate(widths) if not text[index])
    if 0 < excess <= headings_slack:
        others = [index for index in range(len(widths)) if not text[index]]
        _narrow(widths, others, [longest_row[index] for index in others], excess)
    return widths


def _narrow(widths: list[int], indexes: list[int], floors: list[int], excess: int) -> int:
    """Take up to ``excess`` characters from the columns ``indexes``, the widest
    first, none below its floor; return the excess left."""
    floor = dict(zip(indexes, floors))
    while excess > 0:
        candidates = [index for index in indexes if widths[index] > floor[index]]
        if not candidates:
            break
        widths[max(candidates, key=lambda index: widths[index])] -= 1
        excess -= 1
    return excess


def _cell_text(console: Console, cell: RenderableType, one_line: bool = True) -> str:
    """A cell's text (markup rendered, styles dropped); ``one_line``: on one line,
    a heading broken after a dash (``LOG-END-\\nOFFSET``) joined again."""
    if isinstance(cell, Text):
        text = cell.plain
    elif isinstance(cell, str):
        text = console.render_str(cell).plain
    else:
        text = "".join(segment.text for segment in console.render(cell))
    return " ".join(text.replace("-\n", "-").split()) if one_line else text


def _columns(console: Console, table: Table, one_line: bool = True) -> list[list[str]]:
    """Each column's cells as text: header, rows, footer (as the table shows them)."""
    return [
        ([_cell_text(console, column.header, one_line)] if table.show_header else [])
        + [_cell_text(console, cell, one_line) for cell in column.cells]
        + ([_cell_text(console, column.footer, one_line)] if table.show_footer else [])
        for column in table.columns
    ]


def _pad(text: str, width: int, right: bool) -> str:
    """``text`` padded to ``width`` terminal cells (wide characters count two)."""
    padding = " " * max(width - cell_len(text), 0)
    return padding + text if right else text + padding


def plain_table(console: Console, table: Table) -> list[str]:
    """A table as plain lines: the title, aligned columns (right-justified where
    the table justifies right; trailing spaces stripped), the caption."""
    columns = _columns(console, table)
    widths = [max((cell_len(cell) for cell in cells), default=0) for cells in columns]
    lines = [_cell_text(console, table.title)] if table.title else []
    for row in zip(*columns):
        cells = [_pad(cell, width, column.justify == "right")
                 for cell, width, column in zip(row, widths, table.columns)]
        lines.append(PLAIN_SEPARATOR.join(cells).rstrip())
    if table.caption:
        lines.append(_cell_text(console, table.caption))
    return lines


console = TableConsole(highlight=False)
err_console = TableConsole(stderr=True, highlight=False)

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def emit_json(document: Mapping[str, Any]) -> None:
    """Write one JSON object as one line on stdout."""
    sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")


def one_line(error: BaseException) -> str:
    """An error as one line: ``strerror: filename`` for OS errors, else its message."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        text = f"{error.strerror}: {error.filename}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def b64(data: bytes | None) -> str | None:
    """Bytes as base64 text for JSON (None stays None)."""
    return None if data is None else base64.b64encode(data).decode("ascii")


def short_repr(data: bytes | None, width: int) -> str:
    """``repr`` of bytes, cut to ``width`` characters with ``...`` when longer."""
    text = repr(None if data is None else bytes(data))
    return text if len(text) <= width else text[: max(width - 3, 1)] + "..."


def format_ms(timestamp_ms: int) -> str:
    """A timestamp (ms since the epoch) as ISO 8601 UTC; the number when out of range."""
    try:
        moment = _EPOCH + datetime.timedelta(milliseconds=timestamp_ms)
    except OverflowError:
        return str(timestamp_ms)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def format_age(ms: int | float | None) -> str:
    """A duration in ms, short and readable: ``850ms``, ``12.3s``, ``5m03s``, ``2h05m``,
    ``3d04h``; ``-`` for None."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def format_rate(per_second: float | None) -> str:
    """Records per second with a thousands separator; ``-`` when not measured."""
    return "-" if per_second is None else f"{per_second:,.0f}/s"
