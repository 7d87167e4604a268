"""Side-by-side benchmarks of mqlog and its peers (Redis Streams, NATS JetStream,
persist-queue, litequeue): ``make bench-peers``, or ``python -m peers`` from
``bench/``. The workloads, durability classes and pairing rules are described
in :mod:`peers.run` and :mod:`peers.report`; the results in docs/benchmarks.md.
"""
