"""The mqlog API on a Kafka cluster: ``mqlog.open("kafka://host:port[,...]?option=value")``.

:func:`open_cluster` returns a :class:`ClusterLog`, a :class:`~mqlog.Log` whose
methods run on any Kafka-protocol cluster through confluent-kafka (the
optional extra ``mqlog[kafka]``): topics, producers, consumers and groups,
reads by offset, offsets and time lookups. What a cluster cannot do raises
:class:`~mqlog.errors.UnsupportedError`. docs/cluster.md lists both, and the
URL's options (librdkafka settings: security, SASL, TLS...).

The ``_`` modules are private: ``_url`` (the URL), ``_errors`` (librdkafka's
errors as mqlog's), ``_records`` and ``_reader`` (reads), ``_producer``,
``_consumer``, ``_groups`` (group administration), ``_topic_configs`` (topic
settings under Kafka's names) and ``_log`` (:class:`ClusterLog`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mqlog.cluster._url import is_cluster_url
from mqlog.errors import ConfigError

if TYPE_CHECKING:
    from mqlog.cluster._log import ClusterLog

__all__ = ["INSTALL_HINT", "is_cluster_url", "open_cluster"]

#: How to get the Kafka client a cluster log needs.
INSTALL_HINT = "pip install 'mqlog[kafka]'"


def open_cluster(url: str, *, create: bool = True, read_only: bool = False,
                 apply_retention: bool = True, kafka_config: Mapping[str, str] | None = None,
                 **topic_defaults: Any) -> ClusterLog:
    """Connect to the cluster of a ``kafka://`` URL (what ``mqlog.open`` does for one).

    ``kafka_config``: more librdkafka settings, as the URL's options (for
    secrets better kept out of a URL: ``{"sasl.password": ...}``).
    ``topic_defaults``: TopicConfig settings of topics created through the log.
    ``create`` and ``apply_retention`` concern log directories; a cluster
    exists already and its brokers apply retention: they are accepted and have
    no effect. ``read_only=True``: every call that would write raises
    ReadOnlyError. ConfigError for a bad URL or setting, or when
    confluent-kafka is not installed.
    """
    del create, apply_retention  # a cluster exists already and retains by itself
    try:
        import confluent_kafka  # noqa: F401  (the one dependency of this package)
    except ImportError:
        raise ConfigError(f"{url!r} needs confluent-kafka, the Kafka client: "
                          f"{INSTALL_HINT}") from None
    from mqlog.cluster._log import ClusterLog
    from mqlog.cluster._url import parse_url

    return ClusterLog(parse_url(url, kafka_config), read_only=read_only, **topic_defaults)
