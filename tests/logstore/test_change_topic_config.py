"""``Engine.change_topic_config``: a read, modify and write of a topic's config
that concurrent alters cannot slip into (Kafka's APPEND and SUBTRACT need it)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import mqlog
from mqlog import TopicConfig


def test_concurrent_changes_lose_nothing(tmp_path: Path) -> None:
    """Four threads over two engines (as two processes would have) each add 1 to
    retention_ms 25 times from what they read: every increment lands."""
    with mqlog.open(tmp_path) as first, mqlog.open(tmp_path) as second:
        first.create_topic("t", retention_ms=1000)

        def bump(current: TopicConfig) -> dict[str, object]:
            return {"retention_ms": current.retention_ms + 1}

        def run(log: mqlog.Log) -> None:
            for _ in range(25):
                log.engine.change_topic_config("t", bump)

        threads = [threading.Thread(target=run, args=(log,))
                   for log in (first, second, first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert second.engine.change_topic_config("t", lambda _current: {}).retention_ms == 1100
    with mqlog.open(tmp_path) as again:
        assert again.engine.topic_config("t").retention_ms == 1100


def test_a_change_that_raises_writes_nothing(tmp_path: Path) -> None:
    with mqlog.open(tmp_path) as log:
        log.create_topic("t", retention_ms=1000)

        def refuse(current: TopicConfig) -> dict[str, object]:
            raise mqlog.ConfigError(f"no change over {current.retention_ms}")

        with pytest.raises(mqlog.ConfigError, match="no change over 1000"):
            log.engine.change_topic_config("t", refuse)
        with pytest.raises(mqlog.ConfigError):
            log.engine.change_topic_config("t", lambda _current: {"retention_ms": -5})
        assert log.engine.topic_config("t").retention_ms == 1000
