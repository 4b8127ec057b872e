# dmp-xds — the two commands of a fresh machine are `make serve` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install serve test unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Start the registry and repository on the embedded default (SQLite + files under ./var).
serve: $(STAMP)
	$(BIN)/dmp-xds serve

## The whole test suite, SQLite and PostgreSQL (a throwaway server is started by the tests).
## pytest's exit code 5 ("no tests collected") is a failure here, never a silent pass.
test: $(STAMP)
	bash .ci/install-postgres
	$(BIN)/pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; \
	exit $$status

## Pure unit tests only (no server, no database): the fast loop while coding.
unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

bench: $(STAMP)
	bash .ci/install-postgres
	$(BIN)/python benchmarks/iti41_iti43.py

clean:
	rm -rf $(VENV) var .pytest_cache
