"""mqlog repair on a log another handle keeps appending to: the repair holds
each partition's append lock, so the appender waits, then goes on; no
acknowledged record is lost, offsets stay unique, verify passes."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import mqlog
from mqlog.logstore import _format as fmt
from mqlog.logstore._segment import list_segment_bases, segment_name
from mqlog.logstore.repair import repair_log
from mqlog.logstore.verify import verify_log

TOPIC = "live"


def test_repair_while_another_handle_appends(log_dir: Path) -> None:
    writer = mqlog.open(log_dir)  # a second Log: its own locks, as another process has
    writer.create_topic(TOPIC, segment_bytes=4096, index_interval_bytes=256, durability="none")
    acknowledged: dict[int, bytes] = {}
    for n in range(300):
        acknowledged[writer.append(TOPIC, 0, [b"r%d" % n])] = b"r%d" % n
    directory = log_dir / "topics" / TOPIC / "0"
    bases = list_segment_bases(str(directory))
    damaged_file = directory / (segment_name(bases[1]) + ".log")
    data = damaged_file.read_bytes()
    header = fmt.decode_header(data, 0, len(data))
    fd = os.open(damaged_file, os.O_RDWR)
    os.pwrite(fd, bytes(b ^ 0xFF for b in os.pread(fd, 4, header.batch_length + 50)),
              header.batch_length + 50)  # the second batch of a closed segment
    os.close(fd)
    lost = set(range(header.next_offset, header.next_offset + 1))
    stop = threading.Event()

    def append() -> None:
        n = 300
        while not stop.is_set():
            acknowledged[writer.append(TOPIC, 0, [b"r%d" % n])] = b"r%d" % n
            n += 1

    thread = threading.Thread(target=append)
    thread.start()
    try:
        report = repair_log(log_dir, execute=True)
    finally:
        stop.set()
        thread.join()
    assert [(r.first_offset, r.next_offset) for r in report.ranges] == [
        (min(lost), max(lost) + 1)]
    assert verify_log(log_dir).ok
    back = {r.offset: bytes(r.value) for r in writer.iter(TOPIC, 0)}
    assert back == {o: v for o, v in acknowledged.items() if o not in lost}
    assert writer.end_offset(TOPIC, 0) == max(acknowledged) + 1
    writer.close()
