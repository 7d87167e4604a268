"""``create_topic(..., exist_ok=True)``: does the existing topic match the request?

A topic matches when it has the requested partition count and, for every config
setting the caller passed, the same value (settings not passed are not
compared: the existing topic may have been altered since). Like ``mkdir -p``
on an existing directory, a match is success; a mismatch is an error that
names each difference, so a script never silently works with a topic other
than the one it asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mqlog.errors import TopicExistsError
from mqlog.logstore.config import TopicConfig

if TYPE_CHECKING:
    from mqlog.logstore._topic_files import TopicDescription


def check_existing_topic(existing: TopicDescription, partitions: int,
                         topic_config: dict[str, Any]) -> TopicDescription:
    """Return ``existing`` if it matches ``partitions`` and ``topic_config``; else
    raise TopicExistsError listing what differs (``partitions 4 (asked 2)``)."""
    asked = TopicConfig.from_options(existing.config, **topic_config)
    differences = []
    if len(existing.partitions) != partitions:
        differences.append(f"partitions {len(existing.partitions)} (asked {partitions})")
    for name in sorted(topic_config):
        have, want = getattr(existing.config, name), getattr(asked, name)
        if have != want:
            differences.append(f"{name} {have!r} (asked {want!r})")
    if differences:
        raise TopicExistsError(f"topic {existing.name!r} already exists with "
                               f"{', '.join(differences)}")
    return existing


__all__ = ["check_existing_topic"]
