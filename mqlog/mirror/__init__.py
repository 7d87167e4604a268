"""Mirroring topics and committed offsets between two logs: ``mqlog mirror``.

:class:`Mirror` copies topics from a source log to a destination log, each a
log directory or a Kafka cluster (``kafka://``), in either direction, through
the API both share (``read``, ``producer``, offsets, groups): partition by
partition, keeping each record's partition number, key, headers and
timestamp. Records get the destination's offsets; committed offsets of
consumer groups are translated to them.

Offsets. A source may have gaps (compaction, retention), and a destination
topic may hold records already, so offsets differ across. Each partition has
an :class:`OffsetMap`: runs ``(source_start, destination_start, length)``,
dense on both sides, built from the offset the destination acknowledged for
each record sent. A committed source offset ``c`` translates to the
destination offset of the first mirrored record whose source offset is
``>= c`` (the destination's next offset when that record is not copied yet;
nothing while records before ``c`` are still to copy) -- exact, as a Kafka
consumer resuming at ``c`` would next read that record. MirrorMaker 2's offset
syncs give the same answer, but only at its sync points.

Progress, and resuming after a kill. The maps are kept in the destination
itself, in the topic ``mqlog-mirror`` (see :mod:`mqlog.mirror._progress`):
a checkpoint per partition records the runs copied since the previous one,
written only once the destination acknowledged (on a log directory, flushed)
every record it covers. Before its first record a partition gets a
checkpoint of where the copy starts. So at any kill the destination holds
exactly: the records the checkpoints cover, then possibly some records copied
after the last one, which are copies of the source records that follow it, in
order (a partition is copied in order by an idempotent producer). On start a
mirror reads the destination past each partition's last checkpoint and
compares each record with the next source record (key, value, headers,
timestamp): each match is mapped as copied; anything else means another
producer wrote to the destination topic, and the mirror stops with
:class:`MirrorError` rather than guess. Then it goes on from the source offset
after the last match: no record is copied twice or skipped.

Groups. :meth:`Mirror.sync_groups` translates each consumer group's committed
offsets on the mirrored partitions and commits them in the destination, for a
group with no live member there (a group already consuming from the
destination owns its offsets), never moving an offset the destination group
has already passed (as MirrorMaker 2). Queue groups are mqlog's own and are
not mirrored.

Verification. :meth:`Mirror.verify` counts and checksums (xxh3-64 over key,
value, headers and timestamp of each record, in order) the source's records
from where the mirror started (or the source's start, if retention moved it
later) up to where the mirror stands, and the destination's records they map
to. A difference means the destination does not hold an exact copy
(records deleted or written there by others, or compaction of the source
since the copy).

One mirror at a time per destination topic: two would interleave their
records and their checkpoints.
"""

from mqlog.mirror._checksum import Checksum, checksum
from mqlog.mirror._mirror import GroupSync, Mirror, PartitionCheck
from mqlog.mirror._offset_map import OffsetMap
from mqlog.mirror._progress import PROGRESS_TOPIC
from mqlog.mirror._topics import MirrorError

__all__ = ["PROGRESS_TOPIC", "Checksum", "GroupSync", "Mirror", "MirrorError", "OffsetMap",
           "PartitionCheck", "checksum"]
