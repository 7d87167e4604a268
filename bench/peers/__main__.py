"""``python -m peers`` (from ``bench/``): run the peer benchmarks, see peers.run."""

import sys

from peers.run import main

sys.exit(main())
