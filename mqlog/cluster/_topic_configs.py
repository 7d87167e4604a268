"""Topic settings on a cluster: TopicConfig fields under their Kafka names.

The names are those ``mqlog serve`` uses (docs/server.md): Kafka's own where
Kafka has the setting (``retention.ms``, ``segment.bytes``, ``cleanup.policy``,
``max.message.bytes``...). The settings only mqlog has (``durability``,
``message_ttl_ms``, ``dead_letter_expired``: durability classes and queue
groups) are not sent: a value other than the default raises UnsupportedError,
and a description reports the default. Values travel as Kafka writes them:
``-1`` for "none" (unlimited), ``compact,delete`` read as ``compact``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from mqlog.errors import UnsupportedError
from mqlog.logstore import TopicConfig
from mqlog.logstore.config import KAFKA_TOPIC_CONFIGS, TopicSetting, topic_settings

_SETTINGS = {setting.name: setting for setting in topic_settings()}
_DEFAULTS = TopicConfig()


def kafka_configs(operation: str, options: Mapping[str, Any]) -> dict[str, str]:
    """The Kafka topic configs for TopicConfig ``options`` (already validated);
    UnsupportedError for a setting only mqlog has, given a value other than its
    default."""
    configs = {}
    for name, value in options.items():
        kafka_name = KAFKA_TOPIC_CONFIGS.get(name)
        if kafka_name is None:
            if value != getattr(_DEFAULTS, name):
                raise UnsupportedError(
                    f"{operation} with {name}={value!r}",
                    f"{name} is a setting of mqlog's own storage; a Kafka cluster has none "
                    f"(see docs/cluster.md)")
            continue
        configs[kafka_name] = _kafka_value(value)
    return configs


def _kafka_value(value: object) -> str:
    if value is None:
        return "-1"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def topic_config(described: Mapping[str, str | None]) -> TopicConfig:
    """The TopicConfig of a topic whose Kafka configs are ``described`` (names the
    cluster does not report, or reports in a form mqlog does not take, keep
    their defaults)."""
    options: dict[str, Any] = {}
    for name, kafka_name in KAFKA_TOPIC_CONFIGS.items():
        text = described.get(kafka_name)
        if text is None:
            continue
        value = _parsed(_SETTINGS[name], text)
        if value is not _UNREADABLE:
            options[name] = value
    try:
        return TopicConfig.from_options(**options)
    except ValueError:  # a value the cluster allows and mqlog does not (a tiny segment)
        return dataclasses.replace(_DEFAULTS)


_UNREADABLE = object()


def _parsed(setting: TopicSetting, text: str) -> object:
    try:
        if setting.optional and text.strip() == "-1":
            return None
        if setting.type is int:
            return int(text)
        if setting.type is float:
            return float(text)
        if setting.type is bool:
            return text.strip().lower() == "true"
        if setting.name == "cleanup_policy":
            return "compact" if "compact" in text else "delete"
        return text if text in setting.choices else _UNREADABLE
    except ValueError:
        return _UNREADABLE
