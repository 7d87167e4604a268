"""Fixtures for the cluster tests: the brokers a ``kafka://`` log runs on
(``broker``, ``skip_on_tansu``, ``unique``: see tests/server/_brokers.py)."""

from __future__ import annotations

from tests.server._brokers import Broker, broker, skip_on_tansu, unique

__all__ = ["Broker", "broker", "skip_on_tansu", "unique"]

#: Tansu hands a group member its first assignment only after the rebalance
#: timeout (librdkafka's max.poll.interval.ms): groups in tests keep it short.
GROUP_OPTIONS = {"max_poll_interval_ms": 6000, "auto_offset_reset": "earliest"}
