"""Names of the files and directories of a log directory: the one place they are spelled.

Every module of the storage layer (and ``mqlog verify``, ``mqlog dump``,
``mqlog repair``) builds paths from these constants; ``docs/format.md``
specifies the same tree and the bytes inside each file. A log directory::

    <log>/
      mqlog.json                     LAYOUT_FILE: {"layout_version": LAYOUT_VERSION}
      .lock                          OPEN_LOCK_FILE: every open Log holds a shared flock
      .meta.lock                     META_LOCK_FILE: flock around topic create/alter/delete
      notify                         NOTIFY_FILE: the append counter waiters sleep on
      recovery.jsonl                 JOURNAL_FILE: what recoveries cut, skipped or rebuilt
      groups/, queues/               consumer and queue groups (owned by mqlog.consumer)
      topics/                        TOPICS_DIR
        ~creating-<hex>/             CREATING_PREFIX: a topic create_topic is still building
        ~deleting-<hex>/             DELETING_PREFIX: a topic delete_topic is removing
        <topic>/
          topic.json                 TOPIC_METADATA_FILE: partition count and config
          <partition>/               0 .. partitions - 1
            state                    STATE_FILE: the partition's published end
            producers                PRODUCERS_FILE: idempotent producers' last appends
            <base>.log               LOG_SUFFIX: segment data, <base> = segment_name(offset)
            <base>.index             INDEX_SUFFIX: sparse offset index
            <base>.timeindex         TIME_INDEX_SUFFIX: sparse time index
            <base>.log.cleaned       CLEANED_SUFFIX: a cleaned copy compaction is swapping in
            cleaner.lock             CLEANER_LOCK_FILE: one cleaner per partition at a time
            cleaner.json             CLEANER_CHECKPOINT_FILE: where compaction got to
            <base>.log.quarantine-<UTC time>       QUARANTINE_INFIX: bytes repair moved aside
            <base>.log.quarantine-<UTC time>.json  QUARANTINE_DESCRIPTION_SUFFIX: what they were

Anywhere in the tree, ``<file>.<pid>-<16 hex digits>.tmp`` (``TEMPORARY_NAME``)
is a file ``_files.atomic_write`` was writing; a dead process leaves it behind
and the next open removes it.

Invariant: no two kinds of file share a name pattern, and ``~`` cannot start a
topic name (see :mod:`mqlog.names`), so staging directories are never listed
as topics and ``list_segment_bases`` sees only segment data files.
"""

from __future__ import annotations

import re

# -- the log directory ---------------------------------------------------------------------

#: The layout version file at the top of a log directory.
LAYOUT_FILE = "mqlog.json"
#: The layout version this mqlog reads and writes (``LAYOUT_FILE``'s ``layout_version``).
LAYOUT_VERSION = 1
#: Every open Log holds a shared flock on this file; the last to close takes it exclusively.
OPEN_LOCK_FILE = ".lock"
#: Exclusive flock held around topic create, alter and delete.
META_LOCK_FILE = ".meta.lock"
#: The append counter and waiter flag that ``wait_for_append`` sleeps on (see ``_notify``).
NOTIFY_FILE = "notify"
#: The recovery journal, one JSON object per line (see ``_journal``).
JOURNAL_FILE = "recovery.jsonl"
#: The directory holding one directory per topic.
TOPICS_DIR = "topics"
#: Name prefix of a topic directory ``create_topic`` is still building.
CREATING_PREFIX = "~creating-"
#: Name prefix a topic directory is renamed to before ``delete_topic`` removes it.
DELETING_PREFIX = "~deleting-"

# -- a topic and its partitions ------------------------------------------------------------

#: A topic's metadata: partition count and config.
TOPIC_METADATA_FILE = "topic.json"
#: A partition's published state (two slots, see ``_state``).
STATE_FILE = "state"
#: A partition's table of idempotent producers (see ``_producers``).
PRODUCERS_FILE = "producers"

# -- segments ------------------------------------------------------------------------------

#: Digits of a segment's base offset in its file names (zero-padded, as Kafka does),
#: so that ``ls`` lists segments in offset order.
SEGMENT_NAME_DIGITS = 20
#: A segment's data file: its batches.
LOG_SUFFIX = ".log"
#: A segment's sparse offset index.
INDEX_SUFFIX = ".index"
#: A segment's sparse time index.
TIME_INDEX_SUFFIX = ".timeindex"
#: The three files of one segment, data first.
SEGMENT_SUFFIXES = (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX)

# -- compaction and repair -----------------------------------------------------------------

#: Appended to a segment file's name for the cleaned copy compaction swaps in.
CLEANED_SUFFIX = ".cleaned"
#: The flock file that keeps a partition to one cleaner at a time.
CLEANER_LOCK_FILE = "cleaner.lock"
#: The compaction checkpoint of a partition (its presence marks it as compacted).
CLEANER_CHECKPOINT_FILE = "cleaner.json"
#: Between a segment's data file name and a UTC time: the bytes repair moved aside.
QUARANTINE_INFIX = ".quarantine-"
#: Appended to a quarantine file's name for the JSON describing its ranges.
QUARANTINE_DESCRIPTION_SUFFIX = ".json"
#: ``time.strftime`` format of the UTC time in a quarantine file's name.
QUARANTINE_TIME_FORMAT = "%Y%m%dT%H%M%SZ"

# -- temporaries ---------------------------------------------------------------------------

#: Last part of the name of a file ``atomic_write`` is writing.
TEMPORARY_SUFFIX = ".tmp"
#: ``<target>.<pid>-<16 hex digits>.tmp``: what ``atomic_write`` leaves if its process dies.
TEMPORARY_NAME = re.compile(r"^(?P<target>.+)\.(?P<pid>[0-9]+)-[0-9a-f]{16}\.tmp\Z")


def segment_name(base_offset: int) -> str:
    """The stem of a segment's file names: its base offset, zero-padded."""
    return f"{base_offset:0{SEGMENT_NAME_DIGITS}d}"


def segment_base(file_name: str) -> int | None:
    """The base offset of a segment data file's name (``<20 digits>.log``), else None."""
    stem = file_name[: -len(LOG_SUFFIX)]
    if (file_name.endswith(LOG_SUFFIX) and len(stem) == SEGMENT_NAME_DIGITS
            and stem.isascii() and stem.isdigit()):
        return int(stem)
    return None
