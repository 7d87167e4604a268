"""Smoke tests of the peer benchmark harness (bench/peers, ``make bench-peers``).

The harness runs in its tiny mode against mqlog and against the peers this
machine has (a peer is skipped without its server binary or Python client, as
on a machine where ``make bench-peers`` never ran), so the suite stays green
without Redis or NATS. Values are not judged, only the shape of the figures and
the pairing rules of the ratios and targets, on figures made up here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"
sys.path.append(str(BENCH_DIR))  # after everything installed: shadows nothing

from peers import core, latency, report  # noqa: E402
from peers.run import SYSTEMS, missing_parts  # noqa: E402

PRESENT = [system for system in SYSTEMS if not missing_parts(system)]
#: The rows of each mqlog setting: (workload, form) in the order they run.
MQLOG_CASES = [("produce", "single"), ("produce", "batch"), ("produce", "async"),
               ("consume", "stream"), ("consume", "queue")]
MQLOG_DURABILITY = {"none": 'durability="none"',
                    "interval": 'durability="interval", flush_ms=1000',
                    "always": 'durability="always"'}
PEER_NAME = {"redis": "Redis Streams", "nats": "NATS JetStream",
             "persist-queue": "persist-queue", "litequeue": "litequeue"}


@dataclass(frozen=True)
class TinyRun:
    done: subprocess.CompletedProcess
    figures: list[dict]
    markdown: str


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """``python -m peers --tiny`` at 100 B against mqlog and the peers present."""
    output = tmp_path_factory.mktemp("peers") / "peers.jsonl"
    done = subprocess.run(  # every system: the harness skips those missing here
        [sys.executable, "-m", "peers", "--tiny", "--sizes", "100", "--no-plots",
         "--output", str(output)],
        cwd=BENCH_DIR, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    figures = [json.loads(line) for line in output.read_text().splitlines()]
    return TinyRun(done, figures, output.with_suffix(".md").read_text())


def test_mqlog_rows_cover_every_workload_at_each_durability(run: TinyRun) -> None:
    figures = run.figures
    mqlog = [f for f in figures if f["system"] == "mqlog" and f["workload"] != "latency"]
    expected = [(MQLOG_DURABILITY[d], *case) for d in ("none", "interval", "always")
                for case in MQLOG_CASES]
    assert [(f["durability"], f["workload"], f["form"]) for f in mqlog] == expected
    for figure in mqlog:
        assert (figure["bench"], figure["metric"], figure["unit"]) == (
            "peers", "records_per_s", "records/s")
        assert figure["value_bytes"] == 100
        assert type(figure["value"]) in (int, float) and figure["value"] > 0
        assert 0 < figure["records"] <= 200
        assert figure["sync_class"] == ("fsync" if "always" in figure["durability"]
                                        else "relaxed")
        assert figure.get("reference", False) is ("none" not in figure["durability"])
        assert figure["runs"] == 1
    consume = [f for f in mqlog if f["workload"] == "consume"]
    assert [f["backlog"] for f in consume] == [200] * 6  # stream and queue, 3 durabilities


def test_mqlog_latency_runs_at_the_tiny_rate_for_both_classes(run: TinyRun) -> None:
    figures = run.figures
    rows = [f for f in figures if f["system"] == "mqlog" and f["workload"] == "latency"
            and f["rate"] == 500]
    assert [(f["sync_class"], f["metric"]) for f in rows] == [
        (klass, metric) for klass in ("relaxed", "fsync")
        for metric in ("p50_ms", "p99_ms", "p999_ms")]
    for p50, p99, p999 in (rows[:3], rows[3:]):
        assert 0 < p50["value"] <= p99["value"] <= p999["value"]
        assert (p50["sent"], p50["records"]) == (150, 100)  # 0.1 s warm-up + 0.2 s at 500/s
        assert p50["received"] == 150


def test_peers_present_here_have_rows_and_ratios(run: TinyRun) -> None:
    systems = {f["system"] for f in run.figures}
    assert systems == {"mqlog"} | {PEER_NAME[s] for s in PRESENT if s != "mqlog"}
    for figure in run.figures:
        if figure["system"] == "mqlog":
            assert "mqlog_ratio" not in figure
        else:  # every peer row has an mqlog counterpart in the same run
            assert figure["mqlog_ratio"] > 0, figure
    for system in set(SYSTEMS) - set(PRESENT):
        assert f"skipping {system}: no " in run.done.stderr


def test_markdown_report_is_printed_and_saved(run: TinyRun) -> None:
    assert run.done.stdout.strip() == run.markdown.strip()
    for heading in ("### Produce, relaxed durability", "### Produce, fsync durability",
                    "### Consume, relaxed durability", "### Consume, fsync durability",
                    "### End-to-end latency", "### Targets"):
        assert heading in run.markdown
    assert '| mqlog | Log.append, 1,000 records per call | durability="always" |' in (
        run.markdown)


# -- pairing rules, on made-up figures ---------------------------------------------------------


def figure(system: str, workload: str, form: str, sync_class: str, value: float,
           **extra: object) -> dict:
    return {"system": system, "workload": workload, "form": form, "sync_class": sync_class,
            "value": value, "value_bytes": 100, "call": f"{system} {form}",
            "durability": "d", "metric": "records_per_s"} | extra


def test_ratios_pair_each_peer_with_mqlog_of_its_class_and_form() -> None:
    figures = [
        figure("mqlog", "produce", "batch", "relaxed", 1_000_000, reference=True),
        figure("mqlog", "produce", "batch", "relaxed", 9_000_000),  # "none": never paired
        figure("mqlog", "produce", "batch", "fsync", 500_000, reference=True),
        figure("mqlog", "consume", "stream", "relaxed", 400_000, reference=True),
        figure("mqlog", "consume", "queue", "relaxed", 300_000, reference=True),
        figure("Redis Streams", "produce", "batch", "relaxed", 50_000),
        figure("Redis Streams", "produce", "batch", "fsync", 25_000),
        figure("Redis Streams", "consume", "queue", "relaxed", 1_000),
        figure("NATS JetStream", "produce", "single", "relaxed", 2_000),  # no mqlog single
        figure("mqlog", "latency", "single", "relaxed", 0.5, metric="p99_ms", rate=1000,
               reference=True),
        figure("Redis Streams", "latency", "single", "relaxed", 2.0, metric="p99_ms", rate=1000),
        figure("NATS JetStream", "latency", "single", "relaxed", 2.0, metric="p99_ms",
               rate=2000),
    ]
    report.add_ratios(figures)
    assert [f.get("mqlog_ratio") for f in figures] == [
        None, None, None, None, None, 20, 20, 300, None, None, 0.25, None]
    assert figures[5]["mqlog_reference"] == "mqlog batch (d)"


def test_targets_compare_fastest_forms_and_report_misses() -> None:
    figures = [
        figure("mqlog", "consume", "stream", "relaxed", 100_000, reference=True),
        figure("persist-queue", "consume", "stream", "relaxed", 4_000),
        figure("persist-queue", "consume", "queue", "relaxed", 1_000),
        figure("litequeue", "consume", "queue", "relaxed", 20, backlog=100_000),
        figure("litequeue", "consume", "queue", "relaxed", 5_000, backlog=1000,
               fixed_backlog=True),
    ]
    report.add_ratios(figures)
    rows = {text: (ratios, threshold, sense)
            for text, ratios, threshold, sense in report.targets(figures, [100])}
    pq = rows["consume, relaxed: mqlog's fastest form vs persist-queue's fastest, >= 50x"]
    lq = rows["consume, relaxed: mqlog's fastest form vs litequeue's fastest, >= 50x"]
    assert pq == ({100: 25}, 50.0, "min")
    assert lq == ({100: 5000}, 50.0, "min")  # the small-backlog row does not count
    assert report.verdict(*pq) == "missed (worst 25.00x)"
    assert report.verdict(*lq) == "met"
    assert report.verdict({100: 0.4}, 1.0, "max") == "met"
    assert report.verdict({100: None}, 5.0, "min") == "not measured"


def test_latency_run_falls_behind_when_messages_are_missing_or_latency_grows() -> None:
    level = np.full(1000, 400_000, dtype=np.int64)  # 0.4 ms throughout
    growing = np.linspace(1e6, 900e6, 1000).astype(np.int64)  # 1 ms up to 900 ms
    assert latency.LatencyRun(1000, 1000, 1000, level).kept_up is True
    assert latency.LatencyRun(1000, 1000, 999, level).kept_up is False
    assert latency.LatencyRun(1000, 1000, 1000, growing).kept_up is False
    assert latency.LatencyRun(1000, 1000, 1000, level).percentile_ms(50) == 0.4


def test_stamped_messages_carry_their_send_time() -> None:
    make = core.stamped(100)
    message = make()
    assert len(message) == 100
    sent = core.STAMP.unpack_from(message)[0]
    assert core.latency_ns(message, sent + 1234) == 1234
