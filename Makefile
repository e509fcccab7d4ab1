# The two README commands: `make run` and `make test`.
# Both create .venv with Python 3.13 when it is missing and install the project.

SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3; do \
	  if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; \
	  then command -v $$p; break; fi; done)
VENV := .venv
VPY := $(VENV)/bin/python
PEERS := sip-tester baresip-core linphone-cli tshark kamailio kamailio-tls-modules \
	libxml2-utils openssl socat iproute2 postgresql chromium libre-dev gcc pkg-config sqlite3 npm
BENCH_PEERS := janus  # bench/mixer_janus.py only; no test needs it
PYTEST_ARGS ?=

.PHONY: run cluster test test-fast lint peers bench-peers bench clean

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: Python >= 3.13 is required (python3.13 not found)" >&2; exit 1; }
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e '.[test]'
	@touch $@

run: $(VENV)/.installed
	$(VENV)/bin/mrf serve

# A local cluster (docs/scaling.md): PostgreSQL, Kamailio on 127.0.0.10:5060 and
# NODES mrf nodes on 127.0.0.11...; Ctrl-C stops everything.
NODES ?= 3
cluster: $(VENV)/.installed peers
	$(VENV)/bin/mrf cluster --nodes $(NODES)

# Debian test peers (run with the files in tests/peers): installed when missing and we are root.
peers:
	@missing=""; for c in sipp baresip linphone-daemon kamailio tshark xmllint openssl socat ip chromium sqlite3 npm; do \
	  command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing initdb(postgresql)"; \
	for c in gcc pkg-config; do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	pkg-config --exists libre 2>/dev/null || missing="$$missing libre-dev"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing test peers (missing:$$missing)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $(PEERS) >/dev/null; \
	  else echo "make: test peers missing:$$missing (run as root, or apt-get install $(PEERS))" >&2; exit 1; fi; \
	fi
	@# JsSIP for tests/interop/test_jssip.py: from npm, bundled, before `make test` leaves the network
	@if [ ! -f tests/peers/jssip/jssip.bundle.js ] && command -v npm >/dev/null 2>&1; then \
	  cd tests/peers/jssip && npm install --no-audit --no-fund --silent && npm run -s bundle; \
	fi

# Peers only the benchmarks run (bench/README.md), installed like the test peers.
bench-peers:
	@if ! command -v janus >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing bench peers: $(BENCH_PEERS)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $(BENCH_PEERS) >/dev/null; \
	  else echo "make: bench peers missing: janus (run as root, or apt-get install $(BENCH_PEERS))" >&2; exit 1; fi; \
	fi

# The whole suite runs inside a fresh network namespace when we are root, so the
# peers' fixed ports cannot collide and nothing leaves loopback.
test: $(VENV)/.installed peers
	@if [ "$$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then \
	  unshare -n bash -c 'ip link set lo up && exec $(VPY) -m pytest $(PYTEST_ARGS)'; \
	else $(VPY) -m pytest $(PYTEST_ARGS); fi

test-fast: $(VENV)/.installed
	$(VPY) -m pytest -m 'not interop' $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(VENV)/.installed peers bench-peers
	unshare -n bash -c 'ip link set lo up && exec $(VPY) bench/sip_cps.py'
	unshare -n bash -c 'ip link set lo up && exec $(VPY) bench/mixer.py'
	unshare -n bash -c 'ip link set lo up && exec $(VPY) bench/mixer_janus.py'

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache
