# Every target sets up .venv itself; a second call only re-installs when pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo bench lint clean soak

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# kcat and kafkajs for the server tests, promtool for docs/alerts.yml
# (tests/server/install_tools.sh); the stamp is only written once every tool is
# present, so an offline run tries again later.
TOOLS_STAMP := tests/server/.tools-installed
$(TOOLS_STAMP): tests/server/install_tools.sh tests/server/node/package-lock.json
	sh tests/server/install_tools.sh $(TOOLS_STAMP)

test: $(STAMP) $(TOOLS_STAMP)
	$(PY) -m pytest -q

# The long crash, power-loss, disk-full and kill-storm tests (over 1,000 kill -9
# crashes and 1,000 simulated power losses; about 25 minutes here), then one
# line of counts summed over them; fails if anything acknowledged was lost.
SOAK_COUNTS := .soak-counts.jsonl
soak: $(STAMP)
	rm -f $(SOAK_COUNTS)
	MQLOG_SOAK=1 MQLOG_SOAK_COUNTS=$(abspath $(SOAK_COUNTS)) MQLOG_CRASH_ITERATIONS=200 \
		$(PY) -m pytest -q -m soak tests/crash tests/faults tests/queue/test_queue_processes.py \
		tests/consumer/test_group_processes.py; \
		status=$$?; $(PY) -m tests._soak_summary $(SOAK_COUNTS) && exit $$status

demo: $(STAMP)
	$(VENV)/bin/mqlog demo

bench: $(STAMP)
	$(PY) bench/run_all.py

# Side by side with Redis Streams, NATS JetStream, persist-queue and litequeue (docs/benchmarks.md#peers).
# Installs the two servers with apt-get when missing and the clients into $(VENV); about 6-8 minutes.
.PHONY: bench-peers
bench-peers: $(STAMP)
	sh bench/peers/install.sh $(PY)
	cd bench && $(abspath $(PY)) -m peers --strict

# mqlog serve (durability none and always), Tansu and the embedded API over the Kafka
# protocol (docs/benchmarks.md#mqlog-serve-against-tansu); about 15 minutes. Then the
# tables (bench/results/kafka_serve.md) and the plot (docs/img/kafka_serve.svg).
.PHONY: bench-kafka
bench-kafka: $(STAMP)
	cd bench && $(abspath $(PY)) kafka_serve.py --output results/kafka_serve.jsonl; \
		status=$$?; $(abspath $(PY)) -m kafka_bench.report results/kafka_serve.jsonl \
		> results/kafka_serve.md && cat results/kafka_serve.md && \
		$(abspath $(PY)) -m kafka_bench.plot results/kafka_serve.jsonl \
		../docs/img/kafka_serve.svg && exit $$status

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache $(TOOLS_STAMP)
