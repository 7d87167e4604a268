"""``mqlog metrics``: the exposition of the log, once, on stdout or into a file."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import mqlog
from mqlog import TopicPartition
from mqlog.metrics import exposition
from tests.cli._cli import run
from tests.metrics._scrape import Scrape


def make_log(log_dir: Path) -> None:
    with mqlog.open(log_dir) as log:
        log.create_topic("orders", partitions=2)
        log.create_topic("audit")
        log.append("orders", 1, [b"a", b"b", b"c"])
        log.alter_offsets("billing", {TopicPartition("orders", 1): 1})


def test_prints_the_log_page_without_process_counters(log_dir: Path) -> None:
    make_log(log_dir)
    result = run(CliRunner(), "-d", log_dir, "metrics")
    assert result.exit_code == 0, result.output
    scrape = Scrape(result.stdout.encode())
    with mqlog.open(log_dir) as log:
        assert scrape.samples.keys() == Scrape(exposition(log)).samples.keys()
    assert scrape.value("kafka_topic_partition_current_offset", topic="orders", partition=1) == 3
    assert scrape.value("kafka_consumergroup_lag", consumergroup="billing", topic="orders",
                        partition=1) == 2
    assert "mqlog_records_appended" not in scrape.types


def test_topic_and_group_options_narrow_the_page(log_dir: Path) -> None:
    make_log(log_dir)
    with mqlog.open(log_dir) as log:
        log.alter_offsets("other", {TopicPartition("audit", 0): 0})
    result = run(CliRunner(), "-d", log_dir, "metrics", "--topic", "audit", "-g", "billing")
    assert result.exit_code == 0, result.output
    scrape = Scrape(result.stdout.encode())
    assert [s["topic"] for s in scrape.series("kafka_topic_partitions")] == ["audit"]
    assert [s["consumergroup"] for s in scrape.series("kafka_consumergroup_members")] == [
        "billing"]


def test_output_replaces_the_file_whole(log_dir: Path, tmp_path: Path) -> None:
    make_log(log_dir)
    target = tmp_path / "textfile" / "mqlog.prom"
    target.parent.mkdir()
    target.write_text("old\n")
    result = run(CliRunner(), "-d", log_dir, "metrics", "--output", target)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert Scrape(target.read_bytes()).value("kafka_topic_partitions", topic="orders") == 2
    assert [path.name for path in target.parent.iterdir()] == ["mqlog.prom"]


def test_unknown_names_and_directories_are_not_found(log_dir: Path, tmp_path: Path) -> None:
    make_log(log_dir)
    for args, message in ((["--topic", "nope"], "unknown topic 'nope'"),
                          (["--group", "nope"], "unknown group 'nope'")):
        result = run(CliRunner(), "-d", log_dir, "metrics", *args)
        assert result.exit_code == 3, result.output
        assert message in result.stderr
    result = run(CliRunner(), "-d", tmp_path / "missing", "metrics")
    assert result.exit_code == 3
    assert not (tmp_path / "missing").exists()
