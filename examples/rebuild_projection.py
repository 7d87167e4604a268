"""Rebuild a projection from offset 0: account balances from a topic of payments.

Each record of the topic is a JSON payment ``{"account": "acct-7", "amount": 12.5}``
(negative amounts are withdrawals). The projection -- every account's balance --
is rebuilt by reading every partition from its first offset up to the end it
has when the rebuild starts, so the result is a consistent snapshot even while
producers keep appending.

With ``--group``, the group's committed offsets are then set to where the
rebuild stopped (the group must have no live members), so a projector running
in that group continues exactly after the snapshot::

    python examples/rebuild_projection.py mqlog-data payments --group balances

Prints the balances as one JSON object, accounts sorted.
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import sys

import mqlog


def rebuild(log: mqlog.Log, topic: str) -> tuple[dict[str, float], dict[int, int]]:
    """(balance per account, end offset per partition where the rebuild stopped)."""
    partitions = [p.partition for p in log.describe_topic(topic).partitions]
    ends = {number: log.end_offset(topic, number) for number in partitions}
    balances: dict[str, float] = collections.defaultdict(float)
    for number, end in ends.items():
        for record in log.iter(topic, number, log.start_offset(topic, number), end):
            payment = json.loads(record.value)
            balances[payment["account"]] += payment["amount"]
    return dict(sorted(balances.items())), ends


def hand_over(log: mqlog.Log, group: str, topic: str, ends: dict[int, int]) -> None:
    """Commit ``ends`` for ``group``: its next member starts right after the snapshot."""
    for number, end in ends.items():
        log.reset_offsets(group, topic, [number], to=end)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", help="the log directory")
    parser.add_argument("topic", help="the topic of payments")
    parser.add_argument("--group", help="set this group's offsets to the end of the rebuild")
    args = parser.parse_args(argv)
    with mqlog.open(args.log_dir, create=False) as log:
        balances, ends = rebuild(log, args.topic)
        if args.group:
            hand_over(log, args.group, args.topic, ends)
    print(json.dumps({account: round(amount, 2) for account, amount in balances.items()}))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # | head: stop quietly, as cat does
    sys.exit(main())
