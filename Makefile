# twistedmail — developer entry points.  Everything runs from the project venv (.venv),
# which these targets create and keep up to date.
#
#   make run    start a demo node on 127.0.0.1:1143 in the foreground (user demo / demo)
#               and its status page on http://127.0.0.1:8080/status
#   make cluster        start a local 3-node cluster (IMAP 1143-1145, user demo / demo)
#   make cluster-down   stop it
#   make test   run the whole test suite against this working tree
#   make lint   ruff + mypy
#   make bench  benchmark a fresh node against Dovecot (needs ../shared/bench)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.twistedmail-installed
HOST ?= 127.0.0.1
PORT ?= 1143
HTTP_PORT ?= 8080
HTTP_TOKEN ?=
PYTEST_ARGS ?=
BENCH ?= ../shared/bench/compare.sh
BENCH_ARGS ?= --quick
BENCH_PORT ?= 21144

.PHONY: run test lint bench install dist-check clean cluster cluster-down

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Editable install, so tests and `make run` use this tree's code.  An editable install
# does not put the twistd dropin where twistd's plugin scan looks, so link it there.
$(STAMP): $(BIN)/python setup.cfg pyproject.toml tap/clustermail.py
	@echo "installing twistedmail (editable, with test extras) into $(VENV)"
	@$(BIN)/python -m pip install --disable-pip-version-check -e '.[test]' \
	  > $(VENV)/pip-install.log 2>&1 || { cat $(VENV)/pip-install.log; exit 1; }
	@ln -sf "$(CURDIR)/tap/clustermail.py" \
	  "$$($(BIN)/python -c 'import twisted.plugins as p; print(p.__path__[0])')/clustermail.py"
	@$(BIN)/twistd clustermail --help >/dev/null
	@touch $@

install: $(STAMP)

run: $(STAMP)
	@echo "twistedmail demo node on $(HOST):$(PORT), user demo, password demo (Ctrl-C stops it)"
	@echo "  python3 -c \"import imaplib; c = imaplib.IMAP4('$(HOST)', $(PORT)); c.login('demo', 'demo'); print(c.list())\""
	@echo "  or point any IMAP client at $(HOST) port $(PORT), no TLS (STARTTLS is offered)"
	@echo "  status page: http://$(HOST):$(HTTP_PORT)/status  (metrics: /metrics; HTTP API: make run HTTP_TOKEN=...)"
	$(BIN)/twistd --nodaemon --pidfile= clustermail --imap tcp:$(PORT):interface=$(HOST) --demo \
	  --http tcp:$(HTTP_PORT):interface=$(HOST) $(if $(HTTP_TOKEN),--http-token $(HTTP_TOKEN))

# A local cluster: NODES nodes, IMAP ports PORT, PORT+1, ...; files in CLUSTER_DIR.
NODES ?= 3
CLUSTER_DIR ?= clustermail-local

cluster: $(STAMP)
	$(BIN)/clustermail cluster up -n $(NODES) --base-port $(PORT) --dir $(CLUSTER_DIR)

cluster-down: $(STAMP)
	$(BIN)/clustermail cluster down --dir $(CLUSTER_DIR)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy twistedmail tap

# Benchmark: start a node with a bench user, run the shared comparison against it.
bench: $(STAMP)
	@if [ ! -f $(BENCH) ]; then echo "no $(BENCH): nothing to compare"; exit 0; fi; \
	$(BIN)/twistd --nodaemon --pidfile= clustermail \
	  --imap tcp:$(BENCH_PORT):interface=127.0.0.1 --user bench:benchpw \
	  > $(VENV)/bench-node.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null' EXIT; \
	for i in $$(seq 150); do grep -q 'IMAP listening' $(VENV)/bench-node.log && break; sleep 0.1; done; \
	bash $(BENCH) --port $(BENCH_PORT) --user bench --password benchpw --pid $$pid $(BENCH_ARGS)

# Check packaging: a non-editable install into a throwaway venv ships the dropin
# as twisted/plugins/clustermail.py (and no twisted/__init__.py of ours).
dist-check:
	rm -rf /tmp/twistedmail-dist-check
	$(PYTHON) -m venv /tmp/twistedmail-dist-check
	/tmp/twistedmail-dist-check/bin/pip install --quiet --disable-pip-version-check .
	cd /tmp && /tmp/twistedmail-dist-check/bin/python -c 'import twisted.plugins.clustermail as m, sys; print(m.__file__)'
	cd /tmp && /tmp/twistedmail-dist-check/bin/twistd clustermail --help | head -3
	cd /tmp && /tmp/twistedmail-dist-check/bin/twistd web --help | head -1
	! grep -E '^twisted/(plugins/)?__init__\.py' \
	  /tmp/twistedmail-dist-check/lib/python3*/site-packages/twistedmail-*.dist-info/RECORD
	cd /tmp && timeout 10 /tmp/twistedmail-dist-check/bin/twistd -n --pidfile= clustermail \
	  --imap tcp:0:interface=127.0.0.1 --demo | grep -m1 'IMAP listening on'
	rm -rf /tmp/twistedmail-dist-check

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
