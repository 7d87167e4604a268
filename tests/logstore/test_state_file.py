"""The two-slot state file (``mqlog.logstore._state.StateFile``): a reader sees the
newest valid slot, also when another handle (another process) wrote it, and a
damaged newest slot falls back to the older one."""

from __future__ import annotations

from pathlib import Path

from mqlog.logstore._state import SLOT_SIZE, PartitionState, StateFile


def state(end: int) -> PartitionState:
    return PartitionState(0, end, 0, end * 10, -1, 0, 0, 0, 0, 1)


def test_reads_follow_publishes_of_every_handle(tmp_path: Path) -> None:
    writer, reader = StateFile(str(tmp_path / "state")), StateFile(str(tmp_path / "state"))
    try:
        assert reader.read() is None
        first = writer.publish(state(5), None)
        assert (writer.read(), reader.read()) == (first, first)
        assert reader.read() is reader.read()  # unchanged bytes are not decoded again
        second = reader.publish(state(7), reader.read())
        assert second.sequence == first.sequence + 1
        assert writer.read() == second and writer.read().end_offset == 7
        third = writer.publish(state(9), writer.read())
        assert reader.read() == third
    finally:
        writer.close()
        reader.close()


def test_a_damaged_newest_slot_falls_back_to_the_older(tmp_path: Path) -> None:
    file = StateFile(str(tmp_path / "state"))
    try:
        older = file.publish(state(5), None)
        newer = file.publish(state(6), older)
        assert file.read() == newer
        start = (newer.sequence % 2) * SLOT_SIZE
        with open(tmp_path / "state", "r+b") as handle:
            handle.seek(start + 20)
            handle.write(b"\xff")  # inside the end offset: the slot's checksum fails
        assert file.read() == older
    finally:
        file.close()
