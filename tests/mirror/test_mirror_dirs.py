"""``mqlog mirror`` between log directories: the copy, the offsets, the checks."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import mqlog
from mqlog import Record, TopicPartition
from mqlog.mirror import PROGRESS_TOPIC
from tests.cli._cli import run

from ._helpers import assert_mirrored, contents, fill, make_source, sample_records


def test_copies_every_partition_with_keys_headers_and_timestamps(
        runner: CliRunner, tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    with mqlog.open(source) as log:
        fill(log, "payments", [3, 4])
    result = run(runner, "mirror", source, tmp_path / "dst")
    assert result.exit_code == 0, result.output
    assert f"mirrored 72 records of 2 topics from {source} to {tmp_path / 'dst'}" in result.output
    assert "orders/0: 40 records, xxh3 " in result.output
    assert "verified 5 partitions: record counts and checksums equal" in result.output
    with mqlog.open(source) as src, mqlog.open(tmp_path / "dst") as dst:
        assert dst.topics() == sorted(["orders", "payments", PROGRESS_TOPIC])
        assert_mirrored(src, dst, "orders")
        assert_mirrored(src, dst, "payments")


def test_a_second_run_copies_only_what_is_new(runner: CliRunner, tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    assert run(runner, "mirror", source, tmp_path / "dst").exit_code == 0
    with mqlog.open(source) as log:
        log.append("orders", 2, sample_records(2, 6))
    result = run(runner, "mirror", source, tmp_path / "dst")
    assert result.exit_code == 0, result.output
    assert "mirrored 6 records of 1 topic" in result.output
    with mqlog.open(source) as src, mqlog.open(tmp_path / "dst") as dst:
        assert_mirrored(src, dst, "orders")


def test_partitions_added_to_the_source_are_added_to_the_copy(runner: CliRunner,
                                                              tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    assert run(runner, "mirror", source, tmp_path / "dst").exit_code == 0
    with mqlog.open(source) as log:
        log.alter_topic("orders", partitions=5)
        log.append("orders", 4, sample_records(4, 3))
    result = run(runner, "mirror", source, tmp_path / "dst")
    assert result.exit_code == 0, result.output
    assert "mirrored 3 records of 1 topic" in result.output
    assert "verified 5 partitions: record counts and checksums equal" in result.output
    with mqlog.open(source) as src, mqlog.open(tmp_path / "dst") as dst:
        assert_mirrored(src, dst, "orders")


def test_a_following_mirror_takes_up_partitions_added_meanwhile(tmp_path: Path) -> None:
    from mqlog.mirror import Mirror
    source = make_source(tmp_path / "src")
    with mqlog.open(source) as src, mqlog.open(tmp_path / "dst") as dst:
        mirror = Mirror(src, dst)
        mirror.start()
        assert mirror.copy() == 65
        assert mirror.discover() == []
        src.alter_topic("orders", partitions=4)
        src.append("orders", 3, sample_records(3, 2))
        assert mirror.discover() == ["orders"]
        assert mirror.discover() == []
        assert mirror.copy() == 2
        assert len(dst.describe_topic("orders").partitions) == 4
        assert all(check.ok for check in mirror.verify())
        assert_mirrored(src, dst, "orders")


def test_mirroring_back_leaves_the_progress_topic_behind(runner: CliRunner,
                                                         tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    assert run(runner, "mirror", source, tmp_path / "dst").exit_code == 0
    result = run(runner, "mirror", tmp_path / "dst", tmp_path / "back")
    assert result.exit_code == 0, result.output
    with mqlog.open(tmp_path / "back") as back, mqlog.open(source) as src:
        assert back.topics() == ["mqlog-mirror", "orders"]
        assert_mirrored(src, back, "orders")
        progress = [json.loads(r.value) for r in back.iter(PROGRESS_TOPIC, 0)]
        assert {entry["source"] for entry in progress} == {str(tmp_path / "dst")}


def test_topics_pattern_selects_topics_matching_in_full(runner: CliRunner,
                                                        tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    with mqlog.open(source) as log:
        fill(log, "orders-eu", [2])
    result = run(runner, "mirror", source, tmp_path / "dst", "--topics", "orders")
    assert result.exit_code == 0, result.output
    with mqlog.open(tmp_path / "dst") as dst:
        assert dst.topics() == ["mqlog-mirror", "orders"]
    assert run(runner, "mirror", source, tmp_path / "bad", "--topics", "(").exit_code == 2


def test_destination_with_fewer_partitions_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    with mqlog.open(tmp_path / "dst") as dst:
        dst.create_topic("orders", 2)
    result = run(runner, "mirror", source, tmp_path / "dst")
    assert result.exit_code == 4
    assert "destination topic 'orders' has 2 partitions and the source's has 3" in result.output
    with mqlog.open(tmp_path / "dst") as dst:
        assert [dst.end_offset("orders", p) for p in range(2)] == [0, 0]


def test_a_log_is_not_mirrored_into_itself(runner: CliRunner, tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    result = run(runner, "mirror", source, tmp_path / "." / "src")
    assert result.exit_code == 4
    assert "the source and the destination are the same log" in result.output
    with mqlog.open(source) as log:
        assert log.topics() == ["orders"]


def test_missing_source_is_not_found(runner: CliRunner, tmp_path: Path) -> None:
    result = run(runner, "mirror", tmp_path / "nothing", tmp_path / "dst")
    assert result.exit_code == 3
    assert not (tmp_path / "dst").exists()


def test_group_offsets_translate_to_the_first_mirrored_record_at_or_after(
        runner: CliRunner, tmp_path: Path) -> None:
    """The source has gaps (compaction) and a deleted head; the destination topic had
    records already: offsets differ on both counts, and each committed offset must
    land on the copy of the record a consumer resuming at it reads next."""
    source = tmp_path / "src"
    with mqlog.open(source) as log:
        log.create_topic("kv", 2, cleanup_policy="compact", segment_bytes=4096,
                         min_cleanable_dirty_ratio=0.0)
        for index in range(300):
            log.append("kv", index % 2, [Record(b"v%d" % index * 8, key=b"k%d" % (index % 7),
                                                timestamp=1_000 + index)])
        log.compact("kv")
        log.delete_records("kv", 1, 20)
        offsets = [r.offset for r in log.iter("kv", 0, log.start_offset("kv", 0))]
        assert offsets != list(range(offsets[0], offsets[0] + len(offsets)))  # gaps
        gap = next(o + 1 for o, n in zip(offsets, offsets[1:]) if n != o + 1)
        committed = {TopicPartition("kv", 0): gap, TopicPartition("kv", 1): 0}
        log.alter_offsets("billing", committed)
        log.alter_offsets("audit", {TopicPartition("kv", 0): log.end_offset("kv", 0)})
    with mqlog.open(tmp_path / "dst") as dst:
        dst.create_topic("kv", 2)
        dst.append("kv", 0, [b"older"] * 5)
    result = run(runner, "mirror", source, tmp_path / "dst", "--groups")
    assert result.exit_code == 0, result.output
    assert "group billing: kv/0 -> " in result.output
    with mqlog.open(source) as src, mqlog.open(tmp_path / "dst") as dst:
        for group in ("billing", "audit"):
            translated = {(p.topic, p.partition): p.committed_offset
                          for p in dst.describe_group(group).partitions}
            for p in src.describe_group(group).partitions:
                at = translated[(p.topic, p.partition)]
                following = src.read(p.topic, p.partition, max(p.committed_offset,
                                                               src.start_offset("kv", 1)
                                                               if p.partition else 0), 1)
                if following:  # the copy of the record the group reads next
                    copy = dst.read(p.topic, p.partition, at, 1)[0]
                    assert (copy.key, copy.value, copy.timestamp) == (
                        following[0].key, following[0].value, following[0].timestamp)
                else:  # caught up: the destination's end
                    assert at == dst.end_offset(p.topic, p.partition)
        assert dst.read("kv", 0, 0, 5) and contents(dst, "kv", 0, 0, 5)[0][1] == b"older"


def test_group_offsets_never_move_back_nor_touch_a_live_group(runner: CliRunner,
                                                             tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    with mqlog.open(source) as log:
        log.alter_offsets("billing", {TopicPartition("orders", 0): 10})
        log.alter_offsets("live", {TopicPartition("orders", 0): 10})
    assert run(runner, "mirror", source, tmp_path / "dst").exit_code == 0
    with mqlog.open(tmp_path / "dst") as dst:
        dst.alter_offsets("billing", {TopicPartition("orders", 0): 30})
        member = dst.consumer("live", "orders")
        member.poll(timeout=5)
        result = run(runner, "mirror", source, tmp_path / "dst", "--groups")
        member.close()
        assert result.exit_code == 0, result.output
        assert "group billing: already up to date" in result.output
        assert "group live: not translated: it has live members in the destination" in (
            result.output)
        assert dst.describe_group("billing").partitions[0].committed_offset == 30


def test_verification_catches_a_changed_record(runner: CliRunner, tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    assert run(runner, "mirror", source, tmp_path / "dst").exit_code == 0
    with mqlog.open(source) as src, mqlog.open(tmp_path / "dst") as dst:
        copies = list(dst.iter("orders", 0))
        dst.delete_topic("orders")  # the same records again, one value changed
        dst.create_topic("orders", 3)
        copies[7].value = b"tampered"
        dst.append("orders", 0, [Record(c.value, c.key, dict(c.headers or {}), c.timestamp)
                                 for c in copies])
        dst.append("orders", 1, [Record(c.value, c.key, dict(c.headers or {}), c.timestamp)
                                 for c in src.iter("orders", 1)])
    result = run(runner, "mirror", source, tmp_path / "dst")
    assert result.exit_code == 1, result.output
    assert "orders/0: DIFFERENT: source 40 records xxh3 " in result.output
    assert "orders/1: 25 records" in result.output and ": equal" in result.output
    assert "verification failed: 1 of 3 partitions differ" in result.output


def test_verification_catches_deleted_records(runner: CliRunner, tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    assert run(runner, "mirror", source, tmp_path / "dst").exit_code == 0
    with mqlog.open(tmp_path / "dst") as dst:
        dst.delete_records("orders", 1, 3)
    result = run(runner, "mirror", source, tmp_path / "dst")
    assert result.exit_code == 1, result.output
    assert "orders/1: DIFFERENT: source 25 records" in result.output
    assert "destination records missing" in result.output


def test_records_copied_after_the_last_checkpoint_are_found_not_copied_again(
        runner: CliRunner, tmp_path: Path) -> None:
    """What a kill between a copy and its checkpoint leaves: copies in the destination
    the progress does not mention yet."""
    source = make_source(tmp_path / "src")
    assert run(runner, "mirror", source, tmp_path / "dst").exit_code == 0
    with mqlog.open(source) as src, mqlog.open(tmp_path / "dst") as dst:
        src.append("orders", 0, sample_records(0, 9, first_timestamp=5))
        copies = list(src.iter("orders", 0, 40))[:4]
        dst.append("orders", 0, copies)
    result = run(runner, "mirror", source, tmp_path / "dst")
    assert result.exit_code == 0, result.output
    assert "orders/0: 4 records copied before the last stop found in the destination" in (
        result.output)
    assert "mirrored 5 records" in result.output
    with mqlog.open(source) as src, mqlog.open(tmp_path / "dst") as dst:
        assert_mirrored(src, dst, "orders")


def test_a_record_the_mirror_did_not_write_stops_the_resume(runner: CliRunner,
                                                            tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    assert run(runner, "mirror", source, tmp_path / "dst").exit_code == 0
    with mqlog.open(tmp_path / "dst") as dst:
        dst.append("orders", 1, [b"written by someone else"])
    with mqlog.open(source) as src:
        src.append("orders", 1, sample_records(1, 3))
    result = run(runner, "mirror", source, tmp_path / "dst")
    assert result.exit_code == 4
    assert "orders/1: destination offset 25 is not a copy of the next source record" in (
        " ".join(result.output.split()))
    with mqlog.open(tmp_path / "dst") as dst:
        assert dst.end_offset("orders", 1) == 26


def test_records_deleted_from_the_source_before_their_copy_are_passed_over(
        runner: CliRunner, tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    assert run(runner, "mirror", source, tmp_path / "dst").exit_code == 0
    with mqlog.open(source) as src:
        src.append("orders", 0, sample_records(0, 10, first_timestamp=7))
        src.delete_records("orders", 0, 45)  # retention, while the mirror was away
    result = run(runner, "mirror", source, tmp_path / "dst")
    assert result.exit_code == 0, result.output
    assert "orders/0: 5 offsets were deleted from the source (retention) before they could " \
           "be copied" in " ".join(result.output.split())
    assert "mirrored 5 records" in result.output
    assert "orders/0: 5 records" in result.output  # verified: what the source still has
    with mqlog.open(source) as src, mqlog.open(tmp_path / "dst") as dst:
        assert contents(dst, "orders", 0, 40) == contents(src, "orders", 0)
