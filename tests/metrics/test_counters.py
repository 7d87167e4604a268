"""The engine's counters (records and bytes appended and read, flush durations)
grow with the work done through every door, and ServerMetrics counts requests;
both read back from the exposition."""

from __future__ import annotations

from pathlib import Path

import mqlog
from mqlog import ProducerBatch, Record
from mqlog.logstore import FLUSH_BUCKETS_S, EngineCounters
from mqlog.metrics import EngineCollector, ServerMetrics, exposition
from tests.metrics._scrape import Scrape


def counters(log: mqlog.Log) -> Scrape:
    return Scrape(exposition(log, ServerMetrics(log.engine)))


def test_appends_count_records_and_the_bytes_they_take_on_disk(log_dir: Path) -> None:
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic("t")
        before = counters(log)
        assert before.value("mqlog_records_appended_total") == 0
        log.append("t", 0, [b"x" * 100, b"y" * 10, Record(b"z", key=b"k")])
        log.append("t", 0, [b"w"])
        after = counters(log)
        assert after.value("mqlog_records_appended_total") == 4
        assert after.value("mqlog_bytes_appended_total") == log.describe_topic("t").size_bytes


def test_a_duplicate_idempotent_append_is_not_counted(log_dir: Path) -> None:
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic("t")
        batch = ProducerBatch(producer_id=7, epoch=0, base_sequence=0)
        log.append("t", 0, [b"a", b"b"], producer=batch)
        log.append("t", 0, [b"a", b"b"], producer=batch)  # a retry: writes nothing
        assert log.end_offset("t", 0) == 2
        assert counters(log).value("mqlog_records_appended_total") == 2


def test_reads_count_records_and_payload_bytes_through_every_reader(log_dir: Path) -> None:
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic("t")
        log.append("t", 0, [b"0123456789"] * 10)
        assert [len(log.read("t", 0, 0, max_records=4))] == [4]
        assert len(log.read_columns("t", 0, 4, max_records=2)) == 2
        assert counters(log).value("mqlog_records_read_total") == 6
        assert counters(log).value("mqlog_bytes_read_total") == 60
        with log.consumer("g", "t", auto_offset_reset="earliest") as consumer:
            polled = []
            while len(polled) < 10:
                polled += consumer.poll(timeout=5.0)
        scrape = counters(log)
        assert scrape.value("mqlog_records_read_total") == 16
        assert scrape.value("mqlog_bytes_read_total") == 160


def test_each_flush_is_observed_in_the_fsync_histogram(log_dir: Path) -> None:
    with mqlog.open(log_dir, durability="always") as log:
        log.create_topic("t")
        flushes_before = log.engine.counters.snapshot().flushes
        for _ in range(3):
            log.append("t", 0, [b"durable"])
        snapshot = log.engine.counters.snapshot()
        assert snapshot.flushes == flushes_before + 3
        scrape = counters(log)
    assert scrape.types["mqlog_fsync_duration_seconds"] == "histogram"
    buckets = [scrape.value("mqlog_fsync_duration_seconds_bucket", le=le)
               for le in [*map(str, FLUSH_BUCKETS_S), "+Inf"]]
    assert buckets == sorted(buckets)  # cumulative
    assert buckets[-1] == scrape.value("mqlog_fsync_duration_seconds_count") == snapshot.flushes
    assert scrape.value("mqlog_fsync_duration_seconds_sum") == snapshot.flush_seconds_sum > 0


def test_a_flush_lands_in_the_bucket_of_its_duration() -> None:
    counts = EngineCounters()
    counts.flushed(0.0001)  # on a bound: that bucket (le)
    counts.flushed(0.0003)
    counts.flushed(60.0)
    snapshot = counts.snapshot()
    assert snapshot.flush_bucket_counts[0] == 1
    assert snapshot.flush_bucket_counts[FLUSH_BUCKETS_S.index(0.0005)] == 1
    assert snapshot.flush_bucket_counts[-1] == 1
    assert snapshot.flushes == 3 and snapshot.flush_seconds_sum == 60.0004


def test_the_one_shot_page_has_no_process_counters(log_dir: Path) -> None:
    with mqlog.open(log_dir) as log:
        log.create_topic("t")
        scrape = Scrape(exposition(log))
    assert "mqlog_records_appended" not in scrape.types
    assert not [name for name in scrape.types if name.startswith("mqlog_kafka_")]


def test_server_metrics_count_kafka_and_http_requests(log_dir: Path) -> None:
    metrics = ServerMetrics()
    metrics.record_kafka_request("Produce")
    metrics.record_kafka_request("Produce", ["KAFKA_STORAGE_ERROR"])
    metrics.record_kafka_request("Fetch", ["OFFSET_OUT_OF_RANGE", "UNKNOWN_TOPIC_OR_PARTITION"])
    metrics.record_http_request("POST", "/queues/{group}/receive", 200, 0.004)
    metrics.record_http_request("POST", "/queues/{group}/receive", 503, 0.3)
    with mqlog.open(log_dir) as log:
        log.create_topic("t")
        scrape = Scrape(exposition(log, metrics))
    assert scrape.value("kafka_topic_partitions", topic="t") == 1  # the log's state too
    assert scrape.value("mqlog_kafka_requests_total", api="Produce") == 2
    assert scrape.value("mqlog_kafka_requests_total", api="Fetch") == 1
    assert scrape.value("mqlog_kafka_request_errors_total", api="Produce",
                        error="KAFKA_STORAGE_ERROR") == 1
    assert scrape.value("mqlog_kafka_request_errors_total", api="Fetch",
                        error="UNKNOWN_TOPIC_OR_PARTITION") == 1
    route = {"method": "POST", "route": "/queues/{group}/receive"}
    assert scrape.value("mqlog_http_requests_total", status="200", **route) == 1
    assert scrape.value("mqlog_http_requests_total", status="503", **route) == 1
    assert scrape.value("mqlog_http_request_duration_seconds_count", **route) == 2
    assert scrape.value("mqlog_http_request_duration_seconds_sum", **route) == 0.304
    assert scrape.value("mqlog_http_request_duration_seconds_bucket", le="0.005", **route) == 1
    assert "mqlog_records_appended" not in scrape.types  # no engine given


def test_the_engine_collector_describes_without_samples(log_dir: Path) -> None:
    with mqlog.open(log_dir) as log:
        collector = EngineCollector(log.engine)
        assert [f.name for f in collector.describe()] == [f.name for f in collector.collect()]
        assert all(f.samples == [] for f in collector.describe())
