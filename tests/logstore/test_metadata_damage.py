"""Damaged metadata files raise CorruptMetadataError naming the file, and change
nothing; other topics stay usable."""

from __future__ import annotations

from pathlib import Path

import pytest

import mqlog
from tests._directory import snapshot


@pytest.mark.parametrize("damage", [b"", b"{", b"[]", b'{"partitions": "x"}',
                                    b'{"partitions": 1}', b"\xff\xfe"])
def test_a_damaged_topic_json_names_the_file_and_spares_other_topics(
        tmp_path: Path, damage: bytes) -> None:
    path = tmp_path / "log"
    with mqlog.open(path) as log:
        log.create_topic("bad")
        log.create_topic("good")
        log.append("good", 0, [b"kept"])
    metadata = path / "topics" / "bad" / "topic.json"
    metadata.write_bytes(damage)
    before = snapshot(path)
    with mqlog.open(path) as log:
        with pytest.raises(mqlog.CorruptMetadataError) as caught:
            log.describe_topic("bad")
        assert caught.value.file == str(metadata)
        assert "topic.json is damaged" in str(caught.value)
        assert [r.value for r in log.read("good", 0, 0)] == [b"kept"]
    after = snapshot(path)
    assert {name: value for name, value in after.items() if "/bad/" in name} == {
        name: value for name, value in before.items() if "/bad/" in name}


@pytest.mark.parametrize("damage", [b"", b"{", b"[1]", b"\x00" * 10])
def test_a_damaged_layout_file_is_refused_at_open(tmp_path: Path, damage: bytes) -> None:
    path = tmp_path / "log"
    mqlog.open(path).close()
    (path / "mqlog.json").write_bytes(damage)
    with pytest.raises(mqlog.CorruptMetadataError) as caught:
        mqlog.open(path)
    assert caught.value.file == str(path / "mqlog.json")
    assert (path / "mqlog.json").read_bytes() == damage
