"""Smoke tests of the benchmark suite: every script runs with ``--quick`` and
prints well-formed figures, so ``make bench`` cannot rot unnoticed.

The figures' values are not judged (the machine running the tests is not a
benchmark machine), only their shape and workload parameters, plus properties
that hold on any machine: group commit makes fewer flushes than appends,
latency percentiles are ordered, and a killed member's partitions are fetched
only after they are owned.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"
REQUIRED_KEYS = {"bench", "metric", "value", "unit", "records", "python", "machine"}
SEEK_METRICS = ["read_p50_us", "read_p99_us", "offset_for_time_p50_us",
                "offset_for_time_p99_us", "read_first_touch_p50_us", "disk_bytes_per_record",
                "overhead_bytes_per_record"]
#: Script -> the metrics it prints, in order.
EXPECTED_METRICS = {
    "append_batch": ["append_records_per_s", "append_payload_mb_per_s",
                     "raw_pwrite_records_per_s"],
    "read_sequential": ["read_records_per_s", "iter_records_per_s", "read_columns_records_per_s"],
    "append_always_threads": ["always_records_per_s", "always_appends_per_s",
                              "always_fsyncs_per_s", "always_appends_per_fsync",
                              "always_fsync_mean_us", "disk_fdatasync_p50_us"],
    "recovery_open": ["recovery_open_seconds"],
    "seek": SEEK_METRICS * 2,  # one set per size
    "producer_send": ["send_records_per_s", "send_many_records_per_s"],
    "consumer_poll": ["iter_records_per_s", "poll_records_per_s", "poll_columns_records_per_s"],
    "latency_e2e": [f"{placement}{pipe}_{name}_ms"
                    for placement in ("same_process", "other_process") for pipe in ("", "_pipe")
                    for name in ("p50", "p99", "p999")],
    "rebalance": ["takeover_seconds", "ownership_seconds"],
    "describe_group": ["warm_ms", "cold_ms"],
    "http_bench": ["post_one_requests_per_s", "post_batch_messages_per_s",
                   "get_delete_messages_per_s"],
    "queue_throughput": ["one_worker_messages_per_s", "four_processes_messages_per_s",
                         "redelivery_p50_ms", "redelivery_p99_ms"],
    "aio_bench": ["sync_send_records_per_s", "aio_send_records_per_s",
                  "sync_send_one_by_one_records_per_s", "aio_send_one_by_one_records_per_s",
                  "asyncio_gather_cpu_us_per_future",
                  "sync_consume_records_per_s", "aio_consume_records_per_s",
                  *(f"{api}_{placement}_{name}_ms"
                    for placement in ("same_process", "other_process")
                    for api in ("sync", "aio") for name in ("p50", "p99"))],
    "flush_partitions": [f"{way}_{name}" for way in ("threads", "one_by_one", "together")
                         for name in ("rounds_per_s", "round_us", "flush_p50_us",
                                      "flush_p99_us")],
    "metrics_scrape": ["scrape_p50_ms", "scrape_p99_ms", "scrape_cpu_p50_ms", "scrape_cpu_p99_ms",
                       "scrape_cold_ms", "page_bytes", "page_series"],
}


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH_DIR / script), *args], capture_output=True,
                          text=True, timeout=120, check=False)


def figures_of(done: subprocess.CompletedProcess) -> list[dict]:
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@functools.cache
def quick_figures(bench: str) -> tuple[dict, ...]:
    """The figures of ``bench/<bench>.py --quick`` (each script runs once per session)."""
    return tuple(figures_of(run(f"{bench}.py", "--quick")))


def check_shape(figure: dict, bench: str) -> None:
    assert figure.keys() >= REQUIRED_KEYS, figure
    assert figure["bench"] == bench
    assert type(figure["value"]) in (int, float)
    assert figure["value"] >= 0
    assert type(figure["records"]) is int and figure["records"] > 0
    assert isinstance(figure["unit"], str) and figure["unit"]
    assert figure["python"] == platform.python_version()
    assert f"{os.cpu_count()} CPUs" in figure["machine"]


@pytest.mark.parametrize("bench", sorted(EXPECTED_METRICS))
def test_script_prints_one_json_figure_per_line(bench: str) -> None:
    figures = quick_figures(bench)
    assert [figure["metric"] for figure in figures] == EXPECTED_METRICS[bench]
    for figure in figures:
        check_shape(figure, bench)


def test_seek_reports_both_sizes_with_targets() -> None:
    figures = figures_of(run("seek.py", "--quick", "--records", "1500", "3000", "--lookups", "50"))
    assert [figure["records"] for figure in figures] == [1500] * 7 + [3000] * 7
    targeted = [figure for figure in figures if "target_max" in figure]
    assert [figure["metric"] for figure in targeted] == SEEK_METRICS[:4] * 2
    assert {figure["target_max"] for figure in targeted} == {50}
    assert {figure["unit"] for figure in targeted} == {"µs"}
    first_touch = [figure for figure in figures if figure["metric"] == "read_first_touch_p50_us"]
    assert [figure["lookups"] for figure in first_touch] == [2, 3]  # one per 1,000-record batch
    per_record = [figure for figure in figures if figure["metric"] == "disk_bytes_per_record"]
    assert all(figure["value"] > 100 for figure in per_record)


def test_always_durability_shares_flushes_between_appends() -> None:
    first = quick_figures("append_always_threads")[0]
    assert first["appends"] == 80
    assert first["records"] == 8000
    assert 0 < first["fsyncs"] < first["appends"]


def test_run_all_writes_results_and_a_markdown_table(tmp_path: Path) -> None:
    output = tmp_path / "results.jsonl"
    done = run("run_all.py", "--quick", "--only", "recovery_open", "--output", str(output))
    assert done.returncode == 0, done.stderr
    saved = [json.loads(line) for line in output.read_text().splitlines()]
    assert [figure["metric"] for figure in saved] == ["recovery_open_seconds"]
    lines = done.stdout.splitlines()
    assert "| bench | metric | records | value | unit | target | result |" in lines
    row = next(line for line in lines if line.startswith("| recovery_open |"))
    assert "| <= 0.5 |" in row
    assert row.endswith(("| met |", "| missed |"))


def test_producer_and_consumer_throughput_figures_carry_their_workload() -> None:
    send, send_many = quick_figures("producer_send")
    assert (send["per_call"], send_many["per_call"]) == (1, 10_000)
    assert (send["target_min"], send_many["target_min"]) == (500_000, 2_000_000)
    iterate, poll, columns = quick_figures("consumer_poll")
    assert (iterate["max_poll_records"], poll["max_records"]) == (500, 10_000)
    assert (iterate["target_min"], poll["target_min"]) == (1_000_000, 3_000_000)
    assert columns["max_records"] == 10_000 and "target_min" not in columns
    for figure in (send, send_many, iterate, poll, columns):
        assert (figure["records"], figure["repeat"], figure["unit"]) == (20_000, 1, "records/s")


def test_latency_percentiles_are_ordered_and_only_mqlog_p99_has_a_target() -> None:
    figures = {figure["metric"]: figure for figure in quick_figures("latency_e2e")}
    for placement, target in (("same_process", 0.2), ("other_process", 1.0)):
        for prefix, value_bytes in ((placement, 100), (f"{placement}_pipe", 8)):
            p50, p99, p999 = (figures[f"{prefix}_{name}_ms"] for name in ("p50", "p99", "p999"))
            assert 0 < p50["value"] <= p99["value"] <= p999["value"]
            assert "target_max" not in p50 and "target_max" not in p999
            for figure in (p50, p99, p999):
                assert (figure["records"], figure["rate"], figure["value_bytes"]) == (
                    10_000, 10_000, value_bytes)
        assert figures[f"{placement}_p99_ms"]["target_max"] == target
        assert "target_max" not in figures[f"{placement}_pipe_p99_ms"]


def test_rebalance_kills_one_of_four_members_owning_16_partitions() -> None:
    takeover, ownership = quick_figures("rebalance")
    for figure in (takeover, ownership):
        assert (figure["partitions"], figure["members"], figure["lost_partitions"],
                figure["kills"]) == (64, 4, 16, 1)
        assert figure["feed_records_per_s"] > 0
    assert takeover["target_max"] == 1.0 and "target_max" not in ownership
    # A partition is fetched only after its new owner was assigned it.
    assert takeover["value"] >= ownership["value"] > 0


def test_describe_group_checks_a_group_with_half_its_partitions_lagging() -> None:
    warm, cold = quick_figures("describe_group")
    for figure in (warm, cold):
        assert (figure["topics"], figure["partitions"], figure["records"]) == (2, 100, 10_000)
        # Odd partitions trail by 1..50 records: 1 + 2 + ... + 50.
        assert (figure["lagging_partitions"], figure["total_lag"]) == (50, 1275)
    assert (warm["target_max"], warm["calls"], cold["calls"]) == (20, 5, 1)
    assert "target_max" not in cold


def test_http_bench_figures_carry_the_server_cpu_and_the_load() -> None:
    post_one, post_batch, get_delete = quick_figures("http_bench")
    assert (post_one["target_min"], post_batch["target_min"], get_delete["target_min"]) == (
        5_000, 150_000, 3_000)
    assert post_batch["batch"] == 100 and get_delete["batch_size"] == 10
    assert get_delete["records"] == 600  # every message appended was received and deleted
    for figure in (post_one, post_batch, get_delete):
        assert figure["clients"] == 4 and figure["load_1m"] >= 0
    assert post_one["server_cpu_us_per_request"] > 0


def test_metrics_scrape_checks_the_page_of_a_wide_log() -> None:
    figures = {figure["metric"]: figure for figure in quick_figures("metrics_scrape")}
    for figure in figures.values():
        assert (figure["topics"], figure["partitions"], figure["groups"],
                figure["queue_groups"], figure["rounds"]) == (10, 80, 5, 1, 5)
    assert figures["scrape_p50_ms"]["target_max"] == figures["scrape_p99_ms"]["target_max"] == 100
    assert figures["scrape_p99_ms"]["value"] >= figures["scrape_p50_ms"]["value"]
    # 5 families per partition alone: the page holds every partition.
    assert figures["page_series"]["value"] > 5 * 80

