"""``GET /metrics`` of a real ``mqlog serve --kafka --http``: the log's state, both
doors' request counters and the engine's counters on one page."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.server._serve import serving


def _samples(page: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(page) for sample in family.samples}


def test_one_page_counts_both_doors_and_shows_the_log(tmp_path: Path) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    with serving(tmp_path / "log", "--kafka", "127.0.0.1:0", "--http", "127.0.0.1:0") as server:
        admin = AdminClient({"bootstrap.servers": server.address})
        admin.create_topics([NewTopic("orders", 2)])["orders"].result(timeout=30)
        producer = Producer({"bootstrap.servers": server.address})
        for index in range(5):
            producer.produce("orders", b"order %d" % index, partition=1)
        assert producer.flush(30) == 0
        with httpx.Client(base_url=server.http_url, timeout=30) as http:
            assert http.get("/topics/nope").status_code == 404
            assert http.get("/no/such/route").status_code == 404
            response = http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        samples = _samples(response.text)

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("kafka_topic_partition_current_offset", topic="orders", partition="1") == 5
    assert value("kafka_topic_partition_current_offset", topic="orders", partition="0") == 0
    assert value("mqlog_kafka_requests_total", api="CreateTopics") == 1
    assert value("mqlog_kafka_requests_total", api="Produce") >= 1
    assert value("mqlog_http_requests_total", method="GET", route="/topics/{topic}",
                 status="404") == 1
    assert value("mqlog_http_requests_total", method="GET", route="unmatched",
                 status="404") == 1
    assert value("mqlog_records_appended_total") >= 5
