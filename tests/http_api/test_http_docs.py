"""The examples of docs/http.md run against a real ``mqlog serve --http``.

The server is started over ``data`` in a temporary directory (as the doc's
``mqlog --dir data serve --http 127.0.0.1:8080``, on a free port); then the
doc's blocks run in order in that directory: ``sh`` blocks that run
``mqlog`` (as in tests/test_doc_examples.py), and ``console`` blocks that run
``curl``: their ``$ `` lines as one shell script, with the doc's address
replaced by the server's. Each must exit 0, and print what the block shows
under its commands, where ``...`` stands for any text (a receipt handle, a
timestamp). Blocks under ``<!-- not run: REASON -->`` are skipped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.server._serve import serving
from tests.server._tools import require_program
from tests.test_doc_examples import ROOT, TIMEOUT_S

DOC = ROOT / "docs" / "http.md"
#: The address the doc's examples use.
DOC_ADDRESS = "127.0.0.1:8080"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_NOT_RUN = re.compile(r"<!--\s*not run:[^>]*-->\s*$")
_MQLOG_COMMAND = re.compile(r"(^|[\s|;&(])mqlog(\s|$)", re.MULTILINE)


@dataclass(frozen=True)
class Example:
    """A block to run: its line in the doc, its script, and the output it shows
    (None: not checked)."""

    line: int
    script: str
    shown: str | None


def examples(text: str) -> list[Example]:
    """The doc's runnable blocks, in order (see the module docstring)."""
    found = []
    for match in _FENCE.finditer(text):
        language, code = match.group(1), match.group(2)
        before = text[:match.start()].rstrip("\n")
        line = before.count("\n") + 2
        if _NOT_RUN.search(before.rsplit("\n", 1)[-1]):
            continue
        if language == "sh" and _MQLOG_COMMAND.search(code):
            found.append(Example(line, code, None))
        elif language == "console" and "curl " in code:
            lines = code.splitlines()
            script = "".join(line[2:] + "\n" for line in lines if line.startswith("$ "))
            shown = "".join(line + "\n" for line in lines if not line.startswith("$ "))
            found.append(Example(line, script, shown))
    return found


def matches(shown: str, printed: str) -> bool:
    """Whether ``printed`` is ``shown``, with ``...`` in ``shown`` standing for any text
    (a last newline aside: curl prints none after a body)."""
    pattern = ".*?".join(re.escape(part) for part in shown.rstrip("\n").split("..."))
    return re.fullmatch(pattern, printed.rstrip("\n"), re.DOTALL) is not None


def test_the_matcher() -> None:
    assert matches('{"a": ...}\n', '{"a": 17}\n')
    assert not matches('{"a": 1}\n', '{"a": 17}\n')
    assert not matches("204\n", "409\n")


def test_the_doc_has_curl_examples_with_output() -> None:
    found = examples(DOC.read_text())
    assert sum(example.shown is not None for example in found) >= 6
    assert any("DELETE" in example.script for example in found)


def test_http_doc_examples_run_against_a_server(tmp_path: Path) -> None:
    require_program("curl")
    require_program("jq")
    env = {name: value for name, value in os.environ.items() if name != "MQLOG_DIR"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    with serving(tmp_path / "data", "--http", "127.0.0.1:0") as server:
        address = server.http_url.removeprefix("http://")
        for example in examples(DOC.read_text()):
            script = example.script.replace(DOC_ADDRESS, address)
            result = subprocess.run(["sh", "-e", "-c", script], cwd=tmp_path, env=env,
                                    capture_output=True, text=True, timeout=TIMEOUT_S)
            where = f"docs/http.md:{example.line}"
            assert result.returncode == 0, (
                f"{where}: exit {result.returncode}\n{script}\n--- stdout\n{result.stdout}\n"
                f"--- stderr\n{result.stderr}")
            if example.shown is not None:
                shown = example.shown.replace(DOC_ADDRESS, address)
                assert matches(shown, result.stdout), (
                    f"{where}: printed\n{result.stdout}\ninstead of\n{shown}")
