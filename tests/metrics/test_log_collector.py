"""LogCollector: the log's state as metrics, equal to the library's own figures
(describe_topic, describe_group, describe_queue) on a real log, read back with
prometheus_client's parser; topics and groups deleted mid-scrape are left out.

On the fake clock: ages are exact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

import mqlog
from mqlog import TopicPartition
from mqlog.metrics import CONTENT_TYPE, LogCollector, exposition
from tests.conftest import FakeClock
from tests.metrics._scrape import Scrape

#: How long after its records were appended the log is scraped.
AGE_MS = 90_000


@pytest.fixture
def log(log_dir: Path, clock: FakeClock) -> Iterator[mqlog.Log]:
    """A log with topic "orders" (3 partitions: 5 records from offset 1, 2
    records, none), consumer group "billing" (committed 3 and 2 of orders/0
    and orders/1), and queue group "workers" over "jobs" whose open worker
    holds records in every state: ready, in flight, delayed, dead-lettered."""
    with mqlog.open(log_dir, clock=clock, durability="none") as log:
        log.create_topic("orders", partitions=3)
        log.append("orders", 0, [b"order %d" % i for i in range(5)])
        log.append("orders", 1, [b"a", b"b"])
        log.delete_records("orders", 0, 1)
        log.alter_offsets("billing", {TopicPartition("orders", 0): 3,
                                      TopicPartition("orders", 1): 2})
        log.create_topic("jobs")
        log.append("jobs", 0, [b"job %d" % i for i in range(10)])
        with log.queue("workers", "jobs", ack_timeout_s=600, max_deliveries=1,
                       backoff=lambda deliveries: 0.0) as worker:
            taken = worker.receive(6)
            taken[0].ack()
            taken[1].ack()
            taken[2].nack(delay_s=300)
            taken[3].nack()  # its one delivery is spent: dead-lettered by the next receive
            worker.receive(1)
            clock.advance(AGE_MS)
            yield log


def test_topic_metrics_are_describe_topic(log: mqlog.Log) -> None:
    scrape = Scrape(exposition(log))
    assert {s["topic"] for s in scrape.series("kafka_topic_partitions")} == set(log.topics())
    for name in log.topics():
        described = log.describe_topic(name)
        assert scrape.value("kafka_topic_partitions", topic=name) == len(described.partitions)
        for p in described.partitions:
            where = {"topic": name, "partition": p.partition}
            assert scrape.value("kafka_topic_partition_current_offset", **where) == p.end_offset
            assert scrape.value("kafka_topic_partition_oldest_offset", **where) == p.start_offset
            assert scrape.value("mqlog_topic_partition_size_bytes", **where) == p.size_bytes
            assert scrape.value("mqlog_topic_partition_segments", **where) == p.segment_count
    assert scrape.value("kafka_topic_partition_oldest_offset", topic="orders", partition=0) == 1
    assert scrape.value("kafka_topic_partition_current_offset", topic="orders", partition=0) == 5
    assert scrape.value("mqlog_topic_partition_size_bytes", topic="orders", partition=0) > 0


def test_consumer_group_metrics_are_describe_group(log: mqlog.Log) -> None:
    scrape = Scrape(exposition(log))
    described = log.describe_group("billing")
    assert [(p.partition, p.committed_offset, p.lag) for p in described.partitions] == [
        (0, 3, 2), (1, 2, 0)]
    for p in described.partitions:
        where = {"consumergroup": "billing", "topic": "orders", "partition": p.partition}
        assert scrape.value("kafka_consumergroup_current_offset", **where) == p.committed_offset
        assert scrape.value("kafka_consumergroup_lag", **where) == p.lag
    assert scrape.value("kafka_consumergroup_lag_sum", consumergroup="billing",
                        topic="orders") == 2
    assert scrape.value("kafka_consumergroup_current_offset_sum", consumergroup="billing",
                        topic="orders") == 5
    assert scrape.value("mqlog_consumergroup_oldest_unconsumed_age_seconds",
                        consumergroup="billing", topic="orders", partition=0) == AGE_MS / 1000
    assert scrape.get("mqlog_consumergroup_oldest_unconsumed_age_seconds",
                      consumergroup="billing", topic="orders", partition=1) is None  # lag 0
    assert scrape.value("kafka_consumergroup_members", consumergroup="billing") == 0
    assert scrape.value("mqlog_consumergroup_info", consumergroup="billing", kind="consumer",
                        state="Empty") == 1
    assert scrape.get("mqlog_queue_ready_records", consumergroup="billing", topic="orders",
                      partition=0) is None


def test_queue_group_metrics_are_describe_queue(log: mqlog.Log) -> None:
    scrape = Scrape(exposition(log))
    [row] = log.describe_queue("workers")
    assert (row.ready, row.in_flight, row.delayed, row.dead_lettered) == (3, 3, 1, 1)
    where = {"consumergroup": "workers", "topic": "jobs", "partition": 0}
    assert scrape.value("mqlog_queue_ready_records", **where) == row.ready
    assert scrape.value("mqlog_queue_in_flight_records", **where) == row.in_flight
    assert scrape.value("mqlog_queue_delayed_records", **where) == row.delayed
    assert scrape.value("mqlog_queue_dead_lettered_records_total", **where) == row.dead_lettered
    assert scrape.value("mqlog_queue_expired_records_total", **where) == row.expired
    assert scrape.value("kafka_consumergroup_lag", **where) == row.lag
    assert scrape.value("kafka_consumergroup_current_offset", **where) == row.position
    assert scrape.value("mqlog_consumergroup_oldest_unconsumed_age_seconds",
                        **where) == AGE_MS / 1000
    assert scrape.value("kafka_consumergroup_members", consumergroup="workers") == 1
    assert scrape.value("mqlog_consumergroup_info", consumergroup="workers", kind="queue",
                        state="Stable") == 1


def test_the_page_parses_with_each_family_typed(log: mqlog.Log) -> None:
    page = exposition(log)
    assert CONTENT_TYPE.startswith("text/plain; version=")
    scrape = Scrape(page)
    assert scrape.types["kafka_consumergroup_lag"] == "gauge"
    assert scrape.types["mqlog_queue_dead_lettered_records"] == "counter"
    assert page.count(b"# TYPE ") == len(scrape.types)
    assert not [name for name in scrape.types if not name.startswith(("kafka_", "mqlog_"))]


def test_describe_names_what_collect_yields_without_reading_the_log(log: mqlog.Log) -> None:
    collector = LogCollector(log)
    described = [(family.name, family.type, family.samples) for family in collector.describe()]
    collected = [(family.name, family.type) for family in collector.collect()]
    assert [(name, kind) for name, kind, _ in described] == collected
    assert all(samples == [] for _, _, samples in described)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)  # named by describe(): no duplicate, no scrape
    assert registry.get_sample_value("kafka_consumergroup_lag_sum",
                                      {"consumergroup": "billing", "topic": "orders"}) == 2


def test_filters_narrow_topics_and_groups(log: mqlog.Log) -> None:
    scrape = Scrape(exposition(log, topics=["orders", "missing"], groups=["workers"]))
    assert [s["topic"] for s in scrape.series("kafka_topic_partitions")] == ["orders"]
    assert {s["consumergroup"] for s in scrape.series("kafka_consumergroup_members")} == {
        "workers"}


def test_a_topic_deleted_mid_scrape_is_left_out(log: mqlog.Log,
                                                monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    log.create_topic("later")  # listed after "jobs"
    describe = log.describe_topic

    def describe_then_delete(name: str):  # a topic listed, not described yet, goes
        if name == "jobs":
            log.delete_topic("later")
        return describe(name)

    monkeypatch.setattr(log, "describe_topic", describe_then_delete)
    scrape = Scrape(exposition(log))
    topics = {s["topic"] for s in scrape.series("kafka_topic_partitions")}
    assert topics == {"__consumer_offsets", "jobs", "jobs.dlq", "orders"}
    assert "left out" not in caplog.text  # deleted: not worth a warning


def test_a_group_deleted_mid_scrape_is_left_out(log: mqlog.Log,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    log.alter_offsets("audit", {TopicPartition("orders", 1): 1})
    describe = log.describe_group

    def describe_then_delete(name: str):
        if name == "audit":
            log.delete_group("billing")  # listed, not described yet
        return describe(name)

    monkeypatch.setattr(log, "describe_group", describe_then_delete)
    scrape = Scrape(exposition(log))
    groups = {s["consumergroup"] for s in scrape.series("kafka_consumergroup_members")}
    assert groups == {"audit", "workers"}
    assert scrape.value("kafka_consumergroup_lag", consumergroup="audit", topic="orders",
                        partition=1) == 1


def test_a_queue_group_whose_topic_was_deleted_is_scraped_without_it(
        log: mqlog.Log) -> None:
    log.create_topic("mail")
    log.append("mail", 0, [b"m"])
    with log.queue("mailers", "mail") as worker:
        worker.receive(1)[0].ack()
    log.delete_topic("mail")
    scrape = Scrape(exposition(log))
    assert scrape.value("kafka_consumergroup_members", consumergroup="mailers") == 0
    assert scrape.get("kafka_consumergroup_lag", consumergroup="mailers", topic="mail",
                      partition=0) is None
    assert scrape.value("kafka_consumergroup_lag", consumergroup="billing", topic="orders",
                        partition=0) == 2


def test_a_damaged_topic_is_logged_and_left_out(log: mqlog.Log, log_dir: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    log.create_topic("damaged")
    (log_dir / "topics" / "damaged" / "topic.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="mqlog.metrics"):
        scrape = Scrape(exposition(log))
    topics = {s["topic"] for s in scrape.series("kafka_topic_partitions")}
    assert "damaged" not in topics and "orders" in topics
    assert "topic 'damaged' left out of this scrape" in caplog.text
