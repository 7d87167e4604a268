"""``kafka://`` URLs: which brokers to bootstrap from and the client settings.

A URL is ``kafka://HOST:PORT[,HOST:PORT...][?NAME=VALUE&...]``. Each option is
a librdkafka setting under its own name (``security.protocol``,
``sasl.mechanism``, ``sasl.username``, ``ssl.ca.location``, ``client.id``...)
and goes to every client the log makes; ``producer.NAME`` and
``consumer.NAME`` go to the producers or the consumers only. librdkafka checks
the names and values when the log is opened: a bad one raises ConfigError.
The settings mqlog itself chooses (the brokers, group ids, offset handling)
cannot be given.
"""

from __future__ import annotations

import dataclasses
import logging
import urllib.parse
from collections.abc import Mapping
from typing import Any

from mqlog.errors import ConfigError

SCHEME = "kafka"
#: librdkafka settings the log sets itself: from the URL's brokers, or per client.
RESERVED = frozenset({
    "bootstrap.servers", "metadata.broker.list", "group.id", "enable.auto.commit",
    "enable.auto.offset.store", "enable.partition.eof", "on_delivery", "error_cb",
})
#: Prefixes of options for one kind of client.
CLIENT_PREFIXES = ("producer.", "consumer.")
#: Where librdkafka's own log lines go (connection failures, retries): Python's logging.
LIBRDKAFKA_LOGGER = logging.getLogger("mqlog.cluster.librdkafka")


def is_cluster_url(target: object) -> bool:
    """Whether ``target`` (what ``mqlog.open`` was given) names a Kafka cluster."""
    return isinstance(target, str) and target.lower().startswith(f"{SCHEME}://")


@dataclasses.dataclass(frozen=True)
class ClusterAddress:
    """A parsed ``kafka://`` URL: the brokers and the librdkafka settings of each
    kind of client (common settings included in each)."""

    url: str
    brokers: tuple[str, ...]
    common: Mapping[str, str]
    producer: Mapping[str, str]
    consumer: Mapping[str, str]

    def config(self, kind: str = "common") -> dict[str, Any]:
        """librdkafka settings for a client of ``kind`` (common, producer, consumer)."""
        extra = {"producer": self.producer, "consumer": self.consumer}.get(kind, {})
        return {"bootstrap.servers": ",".join(self.brokers), "logger": LIBRDKAFKA_LOGGER,
                **self.common, **extra}


def parse_url(url: str, extra: Mapping[str, str] | None = None) -> ClusterAddress:
    """Parse ``url``; ``extra`` adds settings as the query does (passwords kept out
    of the URL). ConfigError names what is wrong."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != SCHEME:
        raise ConfigError(f"not a kafka:// URL: {url!r}")
    if parts.path not in ("", "/") or parts.fragment:
        raise ConfigError(f"a kafka:// URL has brokers and options only, not a path or "
                          f"fragment: {url!r}")
    brokers = tuple(_broker(word, url) for word in parts.netloc.split(","))
    try:
        pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True,
                                       strict_parsing=bool(parts.query))
    except ValueError as error:
        raise ConfigError(f"bad options in {url!r}: {error}") from None
    options: dict[str, str] = {}
    for name, value in [*pairs, *(extra or {}).items()]:
        if not isinstance(value, str):
            raise ConfigError(f"option {name!r} must be a str, not {type(value).__name__}")
        if name in options:
            raise ConfigError(f"option {name!r} is given twice")
        bare = name.split(".", 1)[1] if name.startswith(CLIENT_PREFIXES) else name
        if bare in RESERVED:
            raise ConfigError(f"option {name!r} is set by mqlog itself")
        options[name] = value
    split: dict[str, dict[str, str]] = {"common": {}, "producer": {}, "consumer": {}}
    for name, value in options.items():
        kind, _, bare = name.partition(".")
        if name.startswith(CLIENT_PREFIXES):
            split[kind][bare] = value
        else:
            split["common"][name] = value
    return ClusterAddress(url, brokers, split["common"], split["producer"], split["consumer"])


def _broker(word: str, url: str) -> str:
    """``HOST:PORT`` checked: a host and a port from 1 to 65535."""
    host, _, port = word.strip().rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"brokers must be HOST:PORT (comma separated), not {word!r} "
                          f"in {url!r}")
    return f"{host}:{int(port)}"
