"""Topic configs under their Kafka names: parsed for CreateTopics, shown by DescribeConfigs.

Every :class:`~mqlog.logstore.TopicConfig` field has one Kafka name: Kafka's
own where Kafka has the setting (``retention.ms``, ``segment.bytes``,
``cleanup.policy``...), else ``mqlog.`` and the field's name with dots
(``mqlog.durability``, ``mqlog.message.ttl.ms``). Values are strings, as on
the wire: integers in decimal, ``-1`` for "none" where the setting may be
None (Kafka's "unlimited"), booleans ``true``/``false``. Kafka's
``cleanup.policy=compact,delete`` is mqlog's ``compact`` (whose retention
settings apply too). A name with no mapping, or a value that does not parse
or validate, raises :class:`~mqlog.errors.ConfigError` naming it: the
handlers answer INVALID_CONFIG with that message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from mqlog.errors import ConfigError
from mqlog.logstore import TopicConfig
from mqlog.logstore.config import KAFKA_TOPIC_CONFIGS, TopicSetting, topic_settings

#: What a value of each type must be, for error messages.
_EXPECTED = {bool: "true or false", int: "an integer", float: "a number"}

#: Kafka's ConfigType (DescribeConfigs v3+) of each value type.
_CONFIG_TYPES = {bool: 1, str: 2, int: 5, float: 6}


def kafka_name(setting: TopicSetting) -> str:
    """The name clients use for ``setting``."""
    return KAFKA_TOPIC_CONFIGS.get(setting.name) or "mqlog." + setting.name.replace("_", ".")


_BY_KAFKA_NAME = {kafka_name(setting): setting for setting in topic_settings()}


def config_type(setting: TopicSetting) -> int:
    """Kafka's ConfigType code for ``setting``'s values."""
    return _CONFIG_TYPES[setting.type]


def setting_named(name: str) -> TopicSetting:
    """The setting clients call ``name``; ConfigError if there is none."""
    setting = _BY_KAFKA_NAME.get(name)
    if setting is None:
        raise ConfigError(f"unknown topic config {name!r}; known: "
                          f"{', '.join(sorted(_BY_KAFKA_NAME))}")
    return setting


def topic_options(configs: Iterable[tuple[str, str | None]]) -> dict[str, Any]:
    """``TopicConfig`` options from (Kafka name, value) pairs; a None value
    keeps the default. ConfigError for an unknown name or a bad value."""
    options: dict[str, Any] = {}
    for name, text in configs:
        setting = setting_named(name)
        if text is not None:
            options[setting.name] = _parse(setting, name, text)
    return options


def checked_config(base: TopicConfig, options: dict[str, Any]) -> TopicConfig:
    """``base`` with ``options`` applied and validated (ConfigError if invalid)."""
    try:
        return TopicConfig.from_options(base, **options)
    except TypeError as error:  # an option TopicConfig does not have: a bug here
        raise ConfigError(str(error)) from error


def kafka_values(config: TopicConfig) -> list[tuple[TopicSetting, str, str]]:
    """(setting, Kafka name, value as text) of every field of ``config``."""
    return [(setting, kafka_name(setting), _format(getattr(config, setting.name)))
            for setting in topic_settings()]


def is_default(setting: TopicSetting, config: TopicConfig) -> bool:
    """True when ``config`` has ``setting`` at TopicConfig's default."""
    field = next(f for f in dataclasses.fields(TopicConfig) if f.name == setting.name)
    return bool(getattr(config, setting.name) == field.default)


def _parse(setting: TopicSetting, name: str, text: str) -> Any:
    text = text.strip()
    try:
        if setting.type is bool:
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower() == "true"
        if setting.type is int:
            value = int(text)
            if setting.optional and value == -1:
                return None
            return value
        if setting.type is float:
            return float(text)
    except ValueError:
        expected = _EXPECTED[setting.type]
        raise ConfigError(f"{name}={text!r}: not {expected}") from None
    if setting.name == "cleanup_policy" and sorted(text.replace(" ", "").split(",")) == [
            "compact", "delete"]:
        return "compact"
    if setting.choices and text not in setting.choices:
        raise ConfigError(f"{name}={text!r}: one of {', '.join(setting.choices)}")
    return text


def _format(value: Any) -> str:
    if value is None:
        return "-1"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
