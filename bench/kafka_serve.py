"""mqlog serve against Tansu and the embedded API, over the Kafka protocol.

Usage: ``python bench/kafka_serve.py [--target T ...] [--quick]`` or
``--broker HOST:PORT``; ``--help`` for every option. The workloads and the
output format are described in ``bench/kafka_bench/run.py``; ``make
bench-kafka`` runs every target and draws ``docs/img/kafka_serve.svg``.
"""

import sys

from kafka_bench.run import main

if __name__ == "__main__":
    sys.exit(main())
