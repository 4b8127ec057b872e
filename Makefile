# dmp-xds — the two commands of a fresh machine are `make serve` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install serve run lint test unit bench bench-dmpi bench-web clean

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
## Under the CI-SIS profile it also runs the kit's ANS schematrons (about 30 ms per document,
## 8 s more at start-up, 600 MB more memory); DMP_XDS_SCHEMATRONS= (empty) turns them off.
## Authentication is on by default (client certificate + VIHF): unless DMP_XDS_TRUST_ANCHORS is
## set, a demo PKI is generated once in $(PKI_DIR) and the server speaks HTTPS with it; the
## commands to call it with a test card are printed. Its patient portal is the one structure whose
## certificate may speak for patients (DMP_XDS_PATIENT_PORTALS, unless set; the hospital's may not).
## DMP_XDS_AUTH=none: plain HTTP, development only.
ANS_KIT ?= ../shared/ans-testcontenucda
PKI_DIR ?= var/pki
serve: $(STAMP)
	@if [ -z "$$DMP_XDS_TRUST_ANCHORS" ] && [ "$$DMP_XDS_AUTH" != "none" ]; then \
	  [ -f $(PKI_DIR)/identities.json ] || $(BIN)/dmp-xds pki init $(PKI_DIR); \
	  echo; echo "Demo PKI in $(PKI_DIR). From another terminal, as a DMP-compatible software with a test card (Dr MARIE MARTIN):"; \
	  echo "  $(BIN)/dmp-xds patient add '279035121518989^^^&1.2.250.1.213.1.4.10&ISO'"; \
	  echo "  $(BIN)/dmp-xds dmp grant '279035121518989^^^&1.2.250.1.213.1.4.10&ISO' $$(python3 -c 'import json;print(json.load(open("$(PKI_DIR)/identities.json"))["identities"]["doctor"]["national_id"])')"; \
	  echo "  $(BIN)/dmp-xds dmp exists '279035121518989^^^&1.2.250.1.213.1.4.10&ISO' --pki $(PKI_DIR)"; \
	  echo "  $(BIN)/dmp-xds submit $(ANS_KIT)/ExemplesCDA/ANEST-CR-ANEST_2022.01.xml --pki $(PKI_DIR)"; \
	  echo "  $(BIN)/dmp-xds query --pki $(PKI_DIR) find-documents --patient '279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH'"; \
	  echo "  $(BIN)/dmp-xds retrieve 1.2.250.1.213.1.1.1.40.2022.1.1 --patient '279035121518989^^^&1.2.250.1.213.1.4.10&ISO' --pki $(PKI_DIR) -o cr.xml"; \
	  echo "  $(BIN)/dmp-xds dmp authorizations '279035121518989^^^&1.2.250.1.213.1.4.10&ISO' --pki $(PKI_DIR)"; \
	  echo "  $(BIN)/dmp-xds pki vihf $(PKI_DIR) doctor '279035121518989^^^&1.2.250.1.213.1.4.10&ISO'   # the VIHF such a call carries"; \
	  echo; \
	fi
	@if [ -z "$$DMP_XDS_TRUST_ANCHORS" ] && [ "$$DMP_XDS_AUTH" != "none" ]; then \
	  export DMP_XDS_TRUST_ANCHORS=$(PKI_DIR)/trust/anchors.pem DMP_XDS_TRUST_INTERMEDIATES=$(PKI_DIR)/trust/intermediates.pem \
	         DMP_XDS_CRL_FILES=$(PKI_DIR)/crl/root.crl.pem,$(PKI_DIR)/crl/cards.crl.pem,$(PKI_DIR)/crl/servers.crl.pem \
	         DMP_XDS_TLS_CERTIFICATE=$(PKI_DIR)/server/server.pem DMP_XDS_TLS_KEY=$(PKI_DIR)/server/server.key; \
	  portals=$$($(BIN)/python -c 'import json; print(",".join(i["structure_id"] for i in json.load(open("$(PKI_DIR)/identities.json"))["identities"].values() if i.get("patient_portal")))'); \
	  export DMP_XDS_PATIENT_PORTALS="$${DMP_XDS_PATIENT_PORTALS-$$portals}"; \
	  echo "Patient portal(s) allowed to speak for patients (DMP_XDS_PATIENT_PORTALS): $$DMP_XDS_PATIENT_PORTALS"; \
	fi; \
	if [ "$${DMP_XDS_PROFILE:-cisis}" != ihe ]; then \
	  export DMP_XDS_SCHEMATRONS="$${DMP_XDS_SCHEMATRONS-$(ANS_KIT)/schematrons}"; \
	fi; \
	DMP_XDS_VALUE_SETS="$${DMP_XDS_VALUE_SETS:-$(ANS_KIT)/jeuxDeValeurs}" \
	DMP_XDS_CDA_SCHEMA="$${DMP_XDS_CDA_SCHEMA:-$(ANS_KIT)/infrastructure/cda/CDA_extended.xsd}" \
	$(BIN)/dmp-xds serve

## Another name for serve.
run: serve

## The quality gates, each failing the build, configured in pyproject.toml: one format (ruff
## format), the lint rules (ruff check), the types (mypy, over src), and the import contracts
## (lint-imports: the layers, no import cycles).
LINT_PATHS := src tests benchmarks migrations
lint: $(STAMP)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

## The whole test suite, SQLite, PostgreSQL and a 3-node Citus cluster (throwaway servers
## started by the tests), and the real-browser tests (tests/browser: headless Chromium;
## docs/testing.md), after the gates of `make lint`. Installs what they need when missing:
## PostgreSQL; Citus, built once from ../shared/citus (CITUS_SOURCE=...) and cached; Ceph's
## radosgw (the S3 server of tests/s3server.py); Debian's chromium, chromium-driver and
## libnss3-tools (apt-get, as root or through sudo).
## pytest's exit code 5 ("no tests collected") is a failure here, never a silent pass.
test: lint
	bash .ci/install-postgres
	bash .ci/install-citus
	bash .ci/install-s3
	bash .ci/install-chromium
	$(BIN)/pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; \
	exit $$status

## tests/unit alone, the fast loop while coding: pure tests, no server, no database, no network
## (tests/unit/conftest.py fails a unit test that opens a network socket or a SQLite database).
unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

bench: $(STAMP)
	bash .ci/install-postgres
	$(BIN)/python benchmarks/iti41_iti43.py

## The DMP's interface with security on (TD0.2 latency, signed TD2.1 submissions/s), on SQLite
## and PostgreSQL, the server as `make serve` runs it: it needs the ANS kit ($(ANS_KIT)) and
## takes about 10 minutes, so it is a target of its own rather than part of `make bench`.
bench-dmpi: $(STAMP)
	bash .ci/install-postgres
	$(BIN)/python benchmarks/dmpi.py --ans $(ANS_KIT)

## The web pages' times (patient's documents and access history, professional's timeline,
## establishment dashboard) with 1 M documents in the registry, on SQLite and PostgreSQL. The
## filled databases are kept in /var/tmp/dmp-xds-bench-web (filling takes about 40 minutes the
## first time; `--data-dir` elsewhere).
bench-web: $(STAMP)
	bash .ci/install-postgres
	$(BIN)/python benchmarks/web_pages.py --http --value-sets $(ANS_KIT)/jeuxDeValeurs

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
