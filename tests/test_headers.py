"""mqlog.headers is the one place reserved header names are spelled, and the docs list them."""

from __future__ import annotations

from pathlib import Path

import mqlog
from mqlog import headers

PACKAGE = Path(mqlog.__file__).parent
DOCS = PACKAGE.parent / "docs"
NAMES = {name: value for name, value in vars(headers).items()
         if name.isupper() and isinstance(value, str)}


def test_header_names_are_spelled_only_in_mqlog_headers() -> None:
    spelled = [(str(path.relative_to(PACKAGE)), value)
               for path in sorted(PACKAGE.rglob("*.py")) if path.name != "headers.py"
               for value in NAMES.values() if f'"{value}"' in path.read_text()]
    assert spelled == []


def test_every_dead_letter_header_has_the_prefix_and_is_listed() -> None:
    dead_letter = {value for name, value in NAMES.items()
                   if name.startswith("DEAD_LETTER_") and name != "DEAD_LETTER_PREFIX"}
    assert set(headers.DEAD_LETTER_HEADERS) == dead_letter
    assert all(value.startswith(headers.DEAD_LETTER_PREFIX) for value in dead_letter)


def test_the_docs_table_lists_every_reserved_header() -> None:
    text = (DOCS / "queues.md").read_text()
    table = text[text.index("## Reserved headers"):text.index("## Command line")]
    missing = [value for name, value in NAMES.items()
               if name != "DEAD_LETTER_PREFIX" and f"`{value}`" not in table]
    assert missing == []
