"""IncrementalAlterConfigs (key 44, v0-v1) and AlterConfigs (key 33, v0-v2): topic settings.

Both change a topic's settings under their Kafka names (``_topic_configs``)
through ``Engine.alter_topic``, so every process using the log sees the
change. A resource's settings are parsed and validated as a whole before
anything is written, and an invalid one changes nothing of that resource
(INVALID_CONFIG, naming the setting). ``validate_only`` checks and changes
nothing.

* IncrementalAlterConfigs changes the settings it names: SET gives a value,
  DELETE returns the setting to its default. APPEND and SUBTRACT apply to
  Kafka's one list setting, ``cleanup.policy``: mqlog's ``compact`` is
  Kafka's ``compact,delete`` (a compacted topic's retention settings apply
  too), so APPEND of ``compact`` compacts the topic and SUBTRACT of
  ``compact`` leaves ``delete``; a list left empty is invalid. On other
  settings they are INVALID_CONFIG, as Kafka answers.
* AlterConfigs (the older API) replaces the topic's settings: those it does
  not name return to their defaults.

Only topics (resource type 2) are altered, never mqlog's internal topics; the
broker's settings are read-only here (set on ``mqlog serve``'s command line):
INVALID_REQUEST. A resource named twice in one request is INVALID_REQUEST, the
other resources go on.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from mqlog.errors import ConfigError, MqlogError
from mqlog.logstore import TopicConfig
from mqlog.server.kafka._codec import Entity, Request, build, part, response_type
from mqlog.server.kafka._context import ServerState
from mqlog.server.kafka._errors import error_code, error_message
from mqlog.server.kafka._metadata import is_internal
from mqlog.server.kafka._topic_configs import checked_config, setting_named, topic_options

INCREMENTAL_API_KEY = 44
INCREMENTAL_VERSIONS = (0, 1)
LEGACY_API_KEY = 33
LEGACY_VERSIONS = (0, 2)

TOPIC = 2
#: IncrementalAlterConfigs' operations.
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
CLEANUP_POLICY = "cleanup.policy"

_DEFAULTS = {field.name: field.default for field in dataclasses.fields(TopicConfig)}


async def incremental_alter_configs(server: ServerState, request: Request) -> Entity:
    """One response per resource asked for, in the request's order."""
    return await _answer(server, request, INCREMENTAL_API_KEY, incremental=True)


async def alter_configs(server: ServerState, request: Request) -> Entity:
    """One response per resource asked for, in the request's order."""
    return await _answer(server, request, LEGACY_API_KEY, incremental=False)


async def _answer(server: ServerState, request: Request, api_key: int, *,
                  incremental: bool) -> Entity:
    body = request.body
    cls = response_type(api_key, request.api_version)
    named = collections.Counter((r.resource_type, r.resource_name) for r in body.resources)
    responses = []
    for resource in body.resources:
        message: str | None
        if named[resource.resource_type, resource.resource_name] > 1:
            code, message = ErrorCode.invalid_request, (
                f"{resource.resource_name!r} is named more than once")
        else:
            code, message = await _alter(server, resource, incremental, body.validate_only)
        responses.append(build(part(cls, "AlterConfigsResourceResponse"), error_code=code,
                               error_message=message, resource_type=resource.resource_type,
                               resource_name=resource.resource_name))
    return build(cls, throttle_time=datetime.timedelta(0), responses=tuple(responses))


async def _alter(server: ServerState, resource: Entity, incremental: bool,
                 validate_only: bool) -> tuple[ErrorCode, str | None]:
    topic = resource.resource_name
    if resource.resource_type != TOPIC:
        return ErrorCode.invalid_request, (
            f"resource type {resource.resource_type}: only topic settings (2) are altered "
            f"here; the broker's are set on mqlog serve's command line")
    if is_internal(topic):
        return ErrorCode.invalid_topic_exception, f"{topic!r} is an internal topic"
    def change(current: TopicConfig) -> dict[str, Any]:
        """The options to set over ``current`` (ConfigError if invalid)."""
        if incremental:
            options = _incremental_options(current, resource.configs)
        else:
            options = {**_DEFAULTS, **topic_options(
                (config.name, config.value) for config in resource.configs)}
        checked_config(current, options)
        return options

    try:
        if validate_only:
            change(server.engine.topic_config(topic))
        else:  # APPEND and SUBTRACT read the current policy under the engine's lock
            await asyncio.to_thread(server.engine.change_topic_config, topic, change)
    except MqlogError as error:
        return error_code(error), error_message(error)
    return ErrorCode.none, None


def _incremental_options(current: TopicConfig, configs: tuple[Entity, ...]) -> dict[str, Any]:
    """TopicConfig options for IncrementalAlterConfigs' operations (ConfigError
    for an unknown setting or operation, or a bad value)."""
    options: dict[str, Any] = {}
    for config in configs:
        operation = config.config_operation
        if operation == SET:
            if config.value is None:
                raise ConfigError(f"{config.name}: SET needs a value")
            options.update(topic_options([(config.name, config.value)]))
        elif operation == DELETE:
            name = setting_named(config.name).name
            options[name] = _DEFAULTS[name]
        elif operation in (APPEND, SUBTRACT):
            if config.name != CLEANUP_POLICY:
                raise ConfigError(f"{config.name}: APPEND and SUBTRACT apply to list "
                                  f"settings only ({CLEANUP_POLICY})")
            policy = options.get("cleanup_policy", current.cleanup_policy)
            options["cleanup_policy"] = _changed_policy(policy, operation, config.value or "")
        else:
            raise ConfigError(f"{config.name}: unknown operation {operation}")
    return options


def _changed_policy(policy: str, operation: int, listed: str) -> str:
    """mqlog's cleanup policy after APPEND or SUBTRACT of Kafka's ``listed`` policies."""
    kafka = {"compact", "delete"} if policy == "compact" else {"delete"}
    values = {value.strip() for value in listed.split(",") if value.strip()}
    unknown = values - {"compact", "delete"}
    if unknown:
        raise ConfigError(f"{CLEANUP_POLICY}: {', '.join(sorted(unknown))} is not a policy "
                          f"(compact, delete)")
    kafka = kafka | values if operation == APPEND else kafka - values
    if not kafka:
        raise ConfigError(f"{CLEANUP_POLICY}: a topic needs a cleanup policy")
    return "compact" if "compact" in kafka else "delete"
