"""Copy a range of offsets of a topic into another log directory.

Copies offsets ``--from-offset`` (default: the start) up to ``--to-offset``
(exclusive; default: the end) of every partition, keeping each record's
partition, key, headers and timestamp (offsets start again at the destination's
end). The destination log and topic are created if missing, with the source
topic's partition count and config::

    python examples/copy_range.py mqlog-data orders /backup/orders-nov --from-offset 1000

Useful to hand a slice of production traffic to a test environment, or to keep
a range before retention deletes it.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys

import mqlog
from mqlog import Record

#: Records read and appended per call.
CHUNK = 1000


def copy_range(source: mqlog.Log, topic: str, target: mqlog.Log, target_topic: str,
               first: int | None, stop: int | None) -> dict[int, int]:
    """Copy the range partition by partition; return records copied per partition."""
    description = source.describe_topic(topic)
    if target_topic not in target.topics():
        target.create_topic(target_topic, len(description.partitions),
                            **dataclasses.asdict(description.config))
    copied = {}
    for p in description.partitions:
        start = p.start_offset if first is None else max(first, p.start_offset)
        end = p.end_offset if stop is None else min(stop, p.end_offset)
        copied[p.partition] = 0
        offset = start
        while offset < end:
            records = [r for r in source.read(topic, p.partition, offset, max_records=CHUNK)
                       if r.offset < end]
            if not records:
                break
            target.append(target_topic, p.partition, [
                Record(r.value, key=r.key, headers=dict(r.headers), timestamp=r.timestamp)
                for r in records])
            copied[p.partition] += len(records)
            offset = records[-1].offset + 1
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", help="the source log directory")
    parser.add_argument("topic", help="the topic to copy from")
    parser.add_argument("target_dir", help="the destination log directory")
    parser.add_argument("--target-topic", help="destination topic (default: the same name)")
    parser.add_argument("--from-offset", type=int, help="first offset to copy")
    parser.add_argument("--to-offset", type=int, help="stop before this offset")
    args = parser.parse_args(argv)
    with mqlog.open(args.log_dir, create=False) as source, mqlog.open(args.target_dir) as target:
        copied = copy_range(source, args.topic, target, args.target_topic or args.topic,
                            args.from_offset, args.to_offset)
    for partition, count in copied.items():
        print(f"partition {partition}: {count} records")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # | head: stop quietly, as cat does
    sys.exit(main())
