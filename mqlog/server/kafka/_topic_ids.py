"""Identities Kafka clients see: the cluster id and topic ids.

Kafka names a cluster with a random UUID (22 characters of base64) and each
topic with a UUID (Metadata v10+, Fetch v13+ address topics by it). mqlog
stores neither: both are derived, so they are stable for as long as the log
directory keeps its path (cluster) and a topic its name (topic). Invariants:
a topic id is never the zero UUID (Kafka's "no id") nor Kafka's reserved
metadata-topic id 1; a topic deleted and created again under the same name
gets the same id (clients that cache ids see the same topic, and the offset
out of range they then meet makes them reset).
"""

from __future__ import annotations

import base64
import os
import uuid

from mqlog.logstore import Engine

_NAMESPACE = uuid.UUID("6d716c6f-672d-4b61-6661-6b61000000a1")
ZERO_UUID = uuid.UUID(int=0)
_RESERVED = (ZERO_UUID, uuid.UUID(int=1))


def cluster_id_for(directory: str) -> str:
    """The cluster id of the log at ``directory``: Kafka's 22-character base64
    form of a UUID derived from the directory's real path."""
    derived = uuid.uuid5(_NAMESPACE, "cluster:" + os.path.realpath(directory))
    return base64.urlsafe_b64encode(derived.bytes).decode("ascii").rstrip("=")


def topic_id(cluster_id: str, topic: str) -> uuid.UUID:
    """The id of topic ``topic`` in cluster ``cluster_id``."""
    derived = uuid.uuid5(_NAMESPACE, f"topic:{cluster_id}:{topic}")
    assert derived not in _RESERVED  # uuid5 sets version bits: never 0 or 1
    return derived


def topic_for_id(engine: Engine, cluster_id: str, wanted: uuid.UUID) -> str | None:
    """The name of the existing topic whose id is ``wanted``, or None (one uuid5
    per topic: cheap next to a request's I/O at the topic counts mqlog has)."""
    if wanted in _RESERVED:
        return None
    for name in engine.topics():
        if topic_id(cluster_id, name) == wanted:
            return name
    return None
