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
## The default CI-SIS profile needs the ANS value sets and CDA schema, which dmp-xds may not
## redistribute: `make serve` takes them from the ANS TestContenuCDA kit next to the checkout
## (ANS_KIT=...), or an explicit DMP_XDS_VALUE_SETS / DMP_XDS_CDA_SCHEMA; without them the server
## stops at start-up and says which setting is missing (DMP_XDS_PROFILE=ihe needs neither).
ANS_KIT ?= ../shared/ans-testcontenucda
serve: $(STAMP)
	DMP_XDS_VALUE_SETS="$${DMP_XDS_VALUE_SETS:-$(ANS_KIT)/jeuxDeValeurs}" \
	DMP_XDS_CDA_SCHEMA="$${DMP_XDS_CDA_SCHEMA:-$(ANS_KIT)/infrastructure/cda/CDA_extended.xsd}" \
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
