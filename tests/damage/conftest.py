"""The pristine damage-lab log, written once per session."""

from __future__ import annotations

import pytest

from ._lab import Pristine, write_pristine


@pytest.fixture(scope="session")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    path = tmp_path_factory.mktemp("damage-lab") / "log"
    return Pristine(path, write_pristine(path))
