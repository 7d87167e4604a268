"""Fixtures of the CLI tests: the known log of ``_helpers`` and a CliRunner."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ._helpers import build_log


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The log of ``_helpers.build_log``, built once per session (copied by ``built``)."""
    path = tmp_path_factory.mktemp("template") / "log"
    build_log(path)
    return path


@pytest.fixture
def built(template: Path, log_dir: Path) -> Path:
    """A fresh copy of the known log, closed; returns its directory."""
    shutil.copytree(template, log_dir)
    return log_dir


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def sigint() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt during every CLI test, also where the test run
    started with SIGINT ignored (a background job): the tests press it."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
