"""The programs outside Python that the server tests drive, and what a test does
when one is missing.

``make test`` installs them first (tests/server/install_tools.sh: kcat with
apt-get, kafkajs with npm into tests/server/node/node_modules). A test that
needs a program which is still missing FAILS with a message saying how to
install it: a silent skip would let a machine without the tools pass the
client-compatibility tests without running them. Setting the environment
variable ``MQLOG_ALLOW_MISSING_TOOLS=1`` turns those failures into skips, for a
machine that cannot install them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ALLOW_MISSING = "MQLOG_ALLOW_MISSING_TOOLS"
NODE_DIR = Path(__file__).resolve().parent / "node"
KAFKAJS_CLIENT = NODE_DIR / "kafkajs_client.js"
INSTALL_HINT = "run `make test` (it calls tests/server/install_tools.sh) or that script by hand"


def missing(what: str) -> None:
    """Fail the calling test because ``what`` is not installed (skip instead when
    MQLOG_ALLOW_MISSING_TOOLS=1)."""
    message = f"{what} is not installed: {INSTALL_HINT}; set {ALLOW_MISSING}=1 to skip instead"
    if os.environ.get(ALLOW_MISSING) == "1":
        pytest.skip(message)
    pytest.fail(message, pytrace=False)


def require_program(name: str) -> str:
    """The path of program ``name`` on PATH; the test fails (or skips) without it."""
    path = shutil.which(name)
    if path is None:
        missing(f"the program {name!r}")
    assert path is not None
    return path


def kafkajs_command() -> list[str]:
    """``node kafkajs_client.js``, checked to be runnable: node on PATH and the
    kafkajs package installed next to the driver."""
    node = require_program("node")
    if not (NODE_DIR / "node_modules" / "kafkajs" / "package.json").is_file():
        missing(f"kafkajs (npm, in {NODE_DIR / 'node_modules'})")
    return [node, str(KAFKAJS_CLIENT)]
