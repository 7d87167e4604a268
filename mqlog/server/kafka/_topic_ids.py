"""Kafka topic ids (KIP-516) for mqlog topics.

Metadata v10+ tells clients a UUID per topic, and Fetch v13+ names topics by
it. mqlog topics have names only, so a topic's id is derived from its name
(UUID version 5 in a fixed namespace): the same on every server over any log
directory, never the reserved all-zero id. A topic deleted and created again
under its name keeps its id, which Kafka would change; a client that cached
the old id keeps fetching the new topic's offsets.
"""

from __future__ import annotations

import uuid

from mqlog.logstore import Engine

_NAMESPACE = uuid.UUID("6d716c6f-672d-6b61-666b-612d746f7069")


def topic_id(name: str) -> uuid.UUID:
    """The id of topic ``name``."""
    return uuid.uuid5(_NAMESPACE, name)


class TopicIds:
    """Maps ids back to the names of the log's topics (learning new topics on a miss)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._names: dict[uuid.UUID, str] = {}

    def name(self, identifier: uuid.UUID) -> str | None:
        """The topic whose id is ``identifier``, or None if no topic has it."""
        name = self._names.get(identifier)
        if name is None or not self._engine.has_topic(name):
            self._names = {topic_id(topic): topic for topic in self._engine.topics()}
            name = self._names.get(identifier)
        return name
