"""The mirror's progress, kept in the destination: the topic ``mqlog-mirror``.

One partition; one JSON record per checkpoint, keyed ``TOPIC/PARTITION`` of
the mirrored partition it is about::

    {"topic": "orders", "partition": 0, "source": "data/",
     "source_next": 1200, "destination_next": 1200, "runs": [[1000, 1000, 200]]}

``runs`` are the :class:`OffsetMap` runs of the records mirrored since the
partition's previous checkpoint, so that replaying every checkpoint in order
rebuilds each partition's whole map (the offset translation of committed
offsets needs it all: the topic is created with no retention). The first
checkpoint of a partition is written before its first record is copied, with
no runs: where the copy starts on both sides. A checkpoint is written only
after the destination acknowledged (and, on a log directory, flushed) every
record it covers, so it never claims more than the destination holds; records
written after the last one are found again on resume (see ``mqlog.mirror``).

The topic lives in the destination, so the progress goes wherever the
mirrored data goes, and a mirror resumes from any machine. ``mqlog tail
mqlog-mirror`` shows it.
"""

from __future__ import annotations

import json

from mqlog.errors import TopicExistsError
from mqlog.log import Log
from mqlog.logstore import Record
from mqlog.mirror._offset_map import OffsetMap

#: The destination's topic of checkpoints (never mirrored itself).
PROGRESS_TOPIC = "mqlog-mirror"

Partition = tuple[str, int]


class ProgressStore:
    """Reads and writes the checkpoints of one destination (see the module)."""

    def __init__(self, destination: Log, source_name: str) -> None:
        self._destination = destination
        self._source_name = source_name
        #: Records each partition had mirrored at its last checkpoint.
        self._written: dict[Partition, int] = {}

    def load(self) -> dict[Partition, OffsetMap]:
        """Every partition's map as the checkpoints so far make it (creating the
        progress topic the first time)."""
        log = self._destination
        if PROGRESS_TOPIC not in log.topics():
            try:
                log.create_topic(PROGRESS_TOPIC, 1, retention_ms=None, retention_bytes=None)
            except TopicExistsError:
                pass  # another process made it meanwhile
            return {}
        maps: dict[Partition, OffsetMap] = {}
        start = log.start_offset(PROGRESS_TOPIC, 0)
        for record in log.iter(PROGRESS_TOPIC, 0, start):
            entry = json.loads(record.value)
            partition = (entry["topic"], int(entry["partition"]))
            offset_map = maps.get(partition)
            if offset_map is None:
                offset_map = maps[partition] = OffsetMap(int(entry["source_next"]),
                                                         int(entry["destination_next"]))
            for source_start, destination_start, length in entry["runs"]:
                offset_map.add_run(int(source_start), int(destination_start), int(length))
            offset_map.skip_to(int(entry["source_next"]))
            offset_map.destination_next = max(offset_map.destination_next,
                                              int(entry["destination_next"]))
        for partition, offset_map in maps.items():
            self._written[partition] = offset_map.mirrored
        return maps

    def pending(self, partition: Partition, offset_map: OffsetMap) -> int:
        """Records of ``partition`` mirrored since its last checkpoint (-1: it has none)."""
        written = self._written.get(partition)
        return -1 if written is None else offset_map.mirrored - written

    def checkpoint(self, items: list[tuple[Partition, OffsetMap]]) -> None:
        """Record where each partition's copy stands now: one record each, each its
        own append (a batch of one record: brokers that misreport the end offset
        of a partition whose last batch holds several, as Tansu 0.6.0, still
        serve the progress topic whole)."""
        for (topic, partition), offset_map in items:
            runs = offset_map.runs_after(self._written.get((topic, partition), 0))
            entry = {"topic": topic, "partition": partition, "source": self._source_name,
                     "source_next": offset_map.source_next,
                     "destination_next": offset_map.destination_next,
                     "runs": [list(run) for run in runs]}
            record = Record(json.dumps(entry, separators=(",", ":")).encode(),
                            key=f"{topic}/{partition}".encode())
            self._destination.append(PROGRESS_TOPIC, 0, [record])
            self._written[(topic, partition)] = offset_map.mirrored
