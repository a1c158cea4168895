# The two commands: `make run` (the demo) and `make test` (the whole test suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test test-future bench-ingest clean

$(BIN)/steward: pyproject.toml
	$(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: on Debian install python3-venv"; exit 1; }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/steward

run: install
	$(BIN)/steward run

test: install
	bash scripts/test-prerequisites.sh
	$(BIN)/pytest

# The suite a year ahead of today's date (libfaketime): no test may depend on the calendar.
test-future: install
	bash scripts/test-prerequisites.sh
	scripts/test-future.sh +365d

bench-ingest: install
	$(BIN)/steward bench ingest

clean:
	rm -rf $(VENV) .pytest_cache
