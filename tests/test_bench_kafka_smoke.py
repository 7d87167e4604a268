"""Smoke tests of the Kafka-protocol benchmark (bench/kafka_serve.py, ``make
bench-kafka``): tiny runs against the embedded API and against Tansu print
well-formed measurements, and the plot draws them. Values are not judged (the
test machine is no benchmark machine), only shapes and properties that hold on
any machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"
sys.path.append(str(BENCH_DIR))  # after everything installed: shadows nothing

from kafka_bench import clients, plot, report, results  # noqa: E402
from kafka_bench import run as bench_run  # noqa: E402

COMMON_KEYS = {"bench", "measurement", "target", "value_bytes", "partitions", "records",
               "load_avg_1m", "python", "machine"}


def run(tmp_path: Path, *arguments: str) -> list[dict]:
    output = tmp_path / "figures.jsonl"
    done = subprocess.run([sys.executable, "kafka_serve.py", *arguments, "--output", str(output)],
                          cwd=BENCH_DIR, capture_output=True, text=True, timeout=180,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    assert printed == [json.loads(line) for line in output.read_text().splitlines()]
    for figure in printed:
        assert figure.keys() >= COMMON_KEYS and "error" not in figure, figure
    return printed


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    return run(tmp_path_factory.mktemp("embedded"), "--target", "embedded", "--records", "2000",
               "--sizes", "100", "--partitions", "1", "2", "--rate", "2000",
               "--latency-records", "500", "--latency-linger-ms", "0", "--repeat", "3")


def test_embedded_run_measures_each_workload_per_partition_count(embedded_run: list[dict]
                                                                ) -> None:
    assert [(f["measurement"], f["partitions"]) for f in embedded_run] == [
        (measurement, partitions) for partitions in (1, 2)
        for measurement in ("produce", "consume", "first_record", "latency")]
    for figure in embedded_run:
        assert figure["target"] == "embedded" and figure["value_bytes"] == 100
        if figure["measurement"] in ("produce", "consume"):
            assert figure["records"] == 2000
            assert figure["msgs_per_s"] > 0
            assert len(figure["runs_msgs_per_s"]) == 3  # --repeat 3
            assert figure["msgs_per_s"] == sorted(figure["runs_msgs_per_s"])[1]
            assert figure["mb_per_s"] == pytest.approx(figure["msgs_per_s"] * 100 / 1e6,
                                                       rel=0.01)
        elif figure["measurement"] == "first_record":
            assert figure["timed_out"] is False and 0 < figure["seconds"] <= figure["wait_s"]
        else:
            assert figure["records"] == 500 and figure["linger_ms"] == 0
            assert 0 < figure["p50_ms"] <= figure["p99_ms"] <= figure["p999_ms"]


def test_tansu_run_reads_the_broker_process(tmp_path: Path) -> None:
    figures = run(tmp_path, "--target", "tansu", "--only", "produce", "--only", "connections",
                  "--records", "1000", "--sizes", "100", "--partitions", "1", "--idle", "20",
                  "--active", "2", "--active-rate", "20", "--window", "0.3")
    produce, connections = figures
    assert produce["measurement"] == "produce" and produce["records"] == 1000
    assert connections["measurement"] == "connections"
    for phase in ("before", "with_idle", "with_active"):
        assert connections[phase]["rss_kib"] > 0 and connections[phase]["cpu_percent"] >= 0
    # the idle connections were open during their sample; the producers add theirs
    assert connections["with_idle"]["sockets"] >= connections["before"]["sockets"] + 20
    assert connections["with_active"]["sockets"] >= connections["with_idle"]["sockets"] + 2


def test_several_client_processes_share_the_produce_and_each_read_every_record(
        tmp_path: Path) -> None:
    figures = run(tmp_path, "--target", "mqlog-none", "--only", "consume", "--records", "3001",
                  "--sizes", "100", "--partitions", "2", "--clients", "3")
    produce, consume = figures
    assert (produce["measurement"], produce["records"], produce["clients"]) == ("produce", 3001, 3)
    assert (consume["measurement"], consume["records"], consume["clients"]) == ("consume", 9003, 3)
    assert produce["msgs_per_s"] > 0 and consume["msgs_per_s"] > 0
    assert produce["broker_cpu_us_per_record"] >= 0 <= consume["broker_cpu_us_per_record"]


def test_a_target_that_cannot_start_is_an_error_line_and_exit_status_1(tmp_path: Path) -> None:
    output = tmp_path / "figures.jsonl"
    done = subprocess.run([sys.executable, "kafka_serve.py", "--broker", "127.0.0.1:1",
                           "--only", "produce", "--records", "10", "--sizes", "100",
                           "--partitions", "1", "--output", str(output)],
                          cwd=BENCH_DIR, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 1
    (line,) = [json.loads(text) for text in done.stdout.splitlines()]
    assert line["target"] == "external" and "error" in line


def test_plot_draws_every_figure_and_labels_a_timeout(embedded_run: list[dict],
                                                      tmp_path: Path) -> None:
    timeout = dict(embedded_run[2], target="tansu", seconds=None, timed_out=True, wait_s=60.0)
    source = tmp_path / "figures.jsonl"
    source.write_text("".join(json.dumps(f) + "\n" for f in [*embedded_run, timeout]))
    target = tmp_path / "plot.svg"
    assert plot.main([str(source), str(target)]) == 0
    root = ElementTree.parse(target).getroot()
    bars = [e for e in root if e.tag.endswith("rect")][1:]  # the first is the background
    # produce, consume, first record (+ the timeout) and two latency panels (p50, p99)
    assert len(bars) == 2 * 5 + 1
    assert any("timeout > 60 s" in (e.text or "") for e in root)


def test_report_has_a_column_per_target_and_a_row_per_figure(embedded_run: list[dict]) -> None:
    failed = {"bench": "kafka_serve", "measurement": "start", "target": "mqlog-none",
              "value_bytes": None, "partitions": None, "records": None,
              "error": "RuntimeError: mqlog serve exited with 2:\nusage"}
    tables = report.render([failed, *embedded_run])
    throughput, connections = tables.split("\n\n")
    header, _rule, *rows = throughput.splitlines()
    assert header.endswith("| mqlog serve, none | embedded API |")
    assert len(rows) == len(embedded_run)
    assert all("| failed: RuntimeError: mqlog serve exited with 2: |" in row for row in rows)
    assert connections.count("\n") == 1  # the embedded API has no connections figures


def test_median_of_runs_takes_each_figure_and_counts_a_timeout_as_slowest() -> None:
    def figure(measurement: str, **figures: object) -> dict:
        return {"measurement": measurement, "target": "tansu", "value_bytes": 100,
                "partitions": 1, "records": 1000, **figures}

    runs = [[figure("produce", msgs_per_s=300.0, mb_per_s=0.03),
             figure("first_record", seconds=None, timed_out=True, wait_s=60.0)],
            [figure("produce", msgs_per_s=100.0, mb_per_s=0.01),
             figure("first_record", seconds=None, timed_out=True, wait_s=60.0)],
            [figure("produce", error="WorkloadError: stalled"),
             figure("first_record", seconds=2.0, timed_out=False, wait_s=60.0)]]
    produce, first = results.median_figures(runs)
    assert (produce["msgs_per_s"], produce["runs"], produce["value_bytes"]) == (200.0, 2, 100)
    assert (first["timed_out"], first["seconds"], first["runs"]) == (True, None, 3)


def test_a_cell_run_several_times_gives_its_median_run_and_every_rate() -> None:
    runs = [(clients.Timed(100, 1.0), {"broker_cpu_us_per_record": 1.0}),
            (clients.Timed(100, 0.25), {"broker_cpu_us_per_record": 2.0}),
            (clients.Timed(100, 0.5), {"broker_cpu_us_per_record": 3.0})]
    timed, figures = bench_run._median_of(runs, 100)
    assert timed == clients.Timed(100, 0.5)
    assert figures["msgs_per_s"] == 200.0 and figures["seconds"] == 0.5
    assert figures["broker_cpu_us_per_record"] == 3.0  # the median run's own
    assert figures["runs_msgs_per_s"] == [100.0, 400.0, 200.0]
