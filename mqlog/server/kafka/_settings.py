"""Server options handlers read (as opposed to limits, see ``_limits``)."""

from __future__ import annotations

import dataclasses

from mqlog.errors import ConfigError
from mqlog.server.kafka._context import ServerState

_EXTENSION = "settings"


@dataclasses.dataclass(frozen=True)
class KafkaSettings:
    """``auto_create_topics``: a Metadata request for a missing topic creates it
    when the client allows it too, as Kafka's ``auto.create.topics.enable``
    (default true). ``default_partitions``: the partition count of topics
    created that way, and by CreateTopics with ``num_partitions`` -1, as
    Kafka's ``num.partitions`` (default 1)."""

    auto_create_topics: bool = True
    default_partitions: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.auto_create_topics, bool):
            raise ConfigError("auto_create_topics must be a bool")
        count = self.default_partitions
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ConfigError(
                f"default_partitions must be an int >= 1, not {self.default_partitions!r}")


def install_settings(server: ServerState, settings: KafkaSettings) -> None:
    """Keep ``settings`` on ``server`` for the handlers."""
    server.extensions[_EXTENSION] = settings


def settings(server: ServerState) -> KafkaSettings:
    """The settings of ``server`` (the defaults if none were installed)."""
    found = server.extensions.get(_EXTENSION)
    return found if isinstance(found, KafkaSettings) else KafkaSettings()
