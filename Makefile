# Every target sets up what it needs: on a fresh machine `make demo` and `make test` are enough.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: all venv test lint typecheck unit schemas golden review demo bench clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

venv: $(STAMP)

## test: linters, type check and the whole test suite (what .ci/run calls)
test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check connector tests scripts $(wildcard bench)
	$(BIN)/ruff format --check connector tests scripts $(wildcard bench)

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

## schemas: regenerate schemas/ from the OCSF 1.8.0 export bundled in ocsf-json-schema
schemas: $(STAMP)
	$(BIN)/python scripts/generate_schemas.py

## golden: regenerate tests/golden/*/*.json expectations (review the diff!) and mappings/REVIEW.md
golden: $(STAMP)
	$(BIN)/python scripts/generate_golden.py
	$(BIN)/python scripts/generate_review.py

review: $(STAMP)
	$(BIN)/python scripts/generate_review.py

## demo: start the embedded simulator, run the connector against it, write the four tables
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

## bench: performance figures into bench/RESULTS.md (not part of make test)
bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache demo-output
