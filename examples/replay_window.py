"""Replay a time window of a topic into a handler.

Reads every partition from the first record at or after ``--start`` up to (not
including) the first record at or after ``--end`` (default: the end of the log
when the replay starts), with a plain consumer (no group: nothing is committed,
the live consumers are not disturbed), and calls :func:`handle` for each
record. Times are ISO 8601 (``2026-11-22T18:00:00Z``; without a zone, local
time) or a duration ago (``90m``, ``2h``, ``1d``)::

    python examples/replay_window.py mqlog-data orders --start 2h --end 1h

Replace :func:`handle` with your own code: re-send an email, rebuild a cache,
feed a fixed version of a service with the traffic it missed.
"""

from __future__ import annotations

import argparse
import datetime
import re
import signal
import sys
import time

import mqlog
from mqlog.consumer import TopicPartition

_AGO = re.compile(r"(\d+)([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def handle(message: mqlog.Message) -> None:
    """What to do with each replayed record: here, print it."""
    moment = datetime.datetime.fromtimestamp(message.timestamp / 1000, datetime.UTC)
    print(f"{moment:%Y-%m-%dT%H:%M:%S}Z {message.partition}:{message.offset} "
          f"{message.value.decode(errors='replace')}")


def to_ms(text: str) -> int:
    """An ISO 8601 time or a duration ago (``90m``) as ms since the epoch."""
    ago = _AGO.fullmatch(text)
    if ago:
        return int((time.time() - int(ago.group(1)) * _UNIT_S[ago.group(2)]) * 1000)
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.timestamp() * 1000)


def replay(log: mqlog.Log, topic: str, start_ms: int, end_ms: int | None) -> int:
    """Call :func:`handle` for the records of the window; return how many."""
    partitions = [TopicPartition(topic, p.partition)
                  for p in log.describe_topic(topic).partitions]
    stops = {tp: log.end_offset(topic, tp.partition) if end_ms is None
             else log.offset_for_time(topic, tp.partition, end_ms) for tp in partitions}
    handled = 0
    with log.consumer() as reader:
        reader.assign(partitions)
        reader.seek_to_time(start_ms)
        active = {tp for tp in partitions if reader.position(tp) < stops[tp]}
        for tp in set(partitions) - active:
            reader.pause(tp)  # pause() without arguments would pause them all
        while active:
            for message in reader.poll(timeout=1.0):
                tp = TopicPartition(message.topic, message.partition)
                if message.offset < stops[tp]:
                    handle(message)
                    handled += 1
            for tp in list(active):
                if reader.position(tp) >= stops[tp]:
                    active.discard(tp)
                    reader.pause(tp)
    return handled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", help="the log directory")
    parser.add_argument("topic", help="the topic to replay")
    parser.add_argument("--start", required=True, help="ISO 8601 time or duration ago")
    parser.add_argument("--end", help="ISO 8601 time or duration ago (default: now)")
    args = parser.parse_args(argv)
    with mqlog.open(args.log_dir, create=False) as log:
        handled = replay(log, args.topic, to_ms(args.start),
                         None if args.end is None else to_ms(args.end))
    print(f"replayed {handled} records", file=sys.stderr)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # | head: stop quietly, as cat does
    sys.exit(main())
