"""docs/server.md's compatibility table names, in each cell, the tests that
prove it (``FILE::TEST``, under tests/server/): every one of them must exist,
so that a renamed or removed test cannot leave the table claiming it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parents[1] / "docs" / "server.md"
_REFERENCE = re.compile(r"`(test_\w+\.py)::(test_\w+)(?:\[[^\]`]*\])?`")


def _compatibility_section() -> str:
    text = DOC.read_text()
    start = text.index("## Compatibility")
    return text[start:text.index("\n## ", start + 1)]


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_every_test_the_compatibility_table_names_exists() -> None:
    section = _compatibility_section()
    references = _REFERENCE.findall(section)
    assert len(references) > 40, "the table's cells should name their tests"
    missing = [f"{file}::{name}" for file, name in sorted(set(references))
               if not (HERE / file).is_file() or name not in _test_functions(HERE / file)]
    assert missing == []


def test_every_cell_names_a_test_or_says_why_not() -> None:
    rows = [line for line in _compatibility_section().splitlines()
            if line.startswith("| ") and not line.startswith(("| feature", "| ---"))]
    assert len(rows) >= 15
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")][1:]
        assert len(cells) == 5, row  # one per client
        for cell in cells:
            assert _REFERENCE.search(cell) or cell.startswith("n/a ("), (row, cell)
