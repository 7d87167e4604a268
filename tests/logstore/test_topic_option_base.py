"""``base`` is not a topic option: passed where topic options go (``mqlog.open``,
``create_topic``, ``alter_topic``, the CLI's pre-check), it is refused as an
unknown option like any other name, never taken as the config to start from."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

import mqlog
from mqlog import TopicConfig
from mqlog.logstore import check_new_topic

VALID_OPTIONS = ", ".join(sorted(field.name for field in dataclasses.fields(TopicConfig)))
MESSAGE = f"unknown topic option(s): base; valid: {VALID_OPTIONS}"


def test_open_refuses_base_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError) as info:
        mqlog.open(tmp_path / "new", base=TopicConfig(retention_ms=1000))
    assert str(info.value) == MESSAGE
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("call", [
    pytest.param(lambda log: log.create_topic("new", base=TopicConfig()), id="create"),
    pytest.param(lambda log: log.alter_topic("t", base=TopicConfig()), id="alter"),
])
def test_create_and_alter_refuse_base(tmp_path: Path,
                                      call: Callable[[mqlog.Log], object]) -> None:
    with mqlog.open(tmp_path / "log") as log:
        log.create_topic("t", retention_ms=5000)
        with pytest.raises(TypeError) as info:
            call(log)
        assert str(info.value) == MESSAGE
        assert log.topics() == ["t"]
        assert log.describe_topic("t").config.retention_ms == 5000


def test_check_new_topic_refuses_base() -> None:
    with pytest.raises(TypeError) as info:
        check_new_topic("t", 1, base=TopicConfig())
    assert str(info.value) == MESSAGE
