# Every target sets up .venv itself; a second call only re-installs when pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

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

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
