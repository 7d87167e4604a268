"""The examples of the README and docs/ run as written, twice in a row.

Collected from the Markdown: the README's ``python`` blocks, and every ``sh`` or
``console`` block that runs ``mqlog`` in README.md, examples/README.md and
docs/*.md (in a ``console`` block, the lines after a ``$ `` prompt). A block
right under ``<!-- not run: REASON -->`` is skipped: one that follows forever or
needs what no example makes. The blocks of one file run in order, in one
temporary directory, with the ``mqlog`` and ``python`` of this environment
first on PATH, then all of them again, in the same directory: an example a
user pastes twice must work twice.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The files whose examples run (the docs' benchmarks have no mqlog commands).
FILES = [ROOT / "README.md", ROOT / "examples" / "README.md",
         *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_NOT_RUN = re.compile(r"<!--\s*not run:[^>]*-->\s*$")
_MQLOG_COMMAND = re.compile(r"(^|[\s|;&(])mqlog(\s|$)", re.MULTILINE)
#: Longest any one file's examples may take (twice).
TIMEOUT_S = 120


@dataclass(frozen=True)
class Block:
    """One fenced block to run: its language, source line and code."""

    language: str
    line: int
    code: str


def blocks(path: Path) -> list[Block]:
    """The runnable blocks of ``path``, in order (see the module docstring)."""
    text = path.read_text()
    found = []
    for match in _FENCE.finditer(text):
        language, code = match.group(1), match.group(2)
        before = text[:match.start()].rstrip("\n")
        if _NOT_RUN.search(before.rsplit("\n", 1)[-1]):
            continue
        if language == "python" and path.name == "README.md" and path.parent == ROOT:
            found.append(Block("python", before.count("\n") + 2, code))
        elif language in ("sh", "console") and _MQLOG_COMMAND.search(code):
            if language == "console":
                code = "".join(line[2:] + "\n" for line in code.splitlines()
                               if line.startswith("$ "))
            found.append(Block("sh", before.count("\n") + 2, code))
    return found


def run_block(block: Block, where: Path, source: Path) -> None:
    bin_dir = Path(sys.executable).parent
    env = {name: value for name, value in os.environ.items() if name != "MQLOG_DIR"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    command = ([sys.executable, "-c", block.code] if block.language == "python"
               else ["sh", "-e", "-c", block.code])
    result = subprocess.run(command, cwd=where, env=env, capture_output=True, text=True,
                            timeout=TIMEOUT_S)
    assert result.returncode == 0, (
        f"{source.relative_to(ROOT)}:{block.line}: exit {result.returncode}\n"
        f"{block.code}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}")


def test_the_extractor_finds_the_examples_and_honours_not_run() -> None:
    readme = blocks(ROOT / "README.md")
    assert [block.language for block in readme] == ["python", "sh"]
    assert "exist_ok=True" in readme[0].code and "--if-not-exists" in readme[1].code
    assert all("-f " not in block.code and "--watch" not in block.code
               for path in FILES for block in blocks(path))


@pytest.mark.parametrize("path", [path for path in FILES if blocks(path)],
                         ids=lambda path: str(path.relative_to(ROOT)))
def test_examples_run_twice_in_a_row(path: Path, tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # examples/README.md's scripts
    for _ in range(2):
        for block in blocks(path):
            run_block(block, tmp_path, path)
