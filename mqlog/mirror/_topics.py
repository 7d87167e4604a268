"""Which topics a mirror copies, and their destination topics.

A destination topic is created with the source topic's partition count and
the settings that mean the same on a log directory and on a Kafka cluster
(``PORTABLE_SETTINGS``); mqlog's own storage settings (durability, segment
sizes) are the destination's business. One that exists already must have at
least as many partitions, since each record keeps its partition number; one
the mirror wrote to before grows to the source's count.
"""

from __future__ import annotations

import re

from mqlog.errors import ConfigError, MqlogError
from mqlog.log import Log
from mqlog.mirror._progress import PROGRESS_TOPIC
from mqlog.names import INTERNAL_PREFIX

#: Topic settings a destination topic takes from its source topic.
PORTABLE_SETTINGS = ("cleanup_policy", "retention_ms", "retention_bytes")


class MirrorError(MqlogError):
    """A mirror cannot go on as asked: a destination topic with too few
    partitions, a destination whose records disagree with the progress it
    recorded. Nothing is copied after it is raised."""


def selected_topics(source: Log, pattern: str | None) -> list[str]:
    """The source's topics a mirror copies: those ``pattern`` (a regular
    expression) matches in full, or all; never internal ``__`` topics nor the
    progress topic of another mirror."""
    try:
        matcher = None if pattern is None else re.compile(pattern)
    except re.error as error:
        raise ConfigError(f"bad topic pattern {pattern!r}: {error}") from None
    return [name for name in source.topics()
            if not name.startswith(INTERNAL_PREFIX) and name != PROGRESS_TOPIC
            and (matcher is None or matcher.fullmatch(name))]


def prepare_topic(source: Log, destination: Log, topic: str, existing: set[str], *,
                  grow: bool = False) -> int:
    """Create ``topic`` in the destination like the source's (unless it is in
    ``existing``, the destination's topics); return its source partition count.
    A destination topic with fewer partitions is grown to it with ``grow`` (the
    mirror wrote to it before), else refused with MirrorError."""
    described = source.describe_topic(topic)
    count = len(described.partitions)
    if topic in existing:
        have = len(destination.describe_topic(topic).partitions)
        if have < count and grow:
            destination.alter_topic(topic, partitions=count)
        elif have < count:
            raise MirrorError(
                f"destination topic {topic!r} has {have} partitions and the source's has "
                f"{count}: records keep their partition numbers, so the destination needs at "
                f"least as many (add partitions to it, or delete it and mirror again)")
        return count
    settings = {name: getattr(described.config, name) for name in PORTABLE_SETTINGS}
    destination.create_topic(topic, count, **settings)
    return count
