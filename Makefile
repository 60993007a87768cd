# courriel: `make run` starts everything on loopback, `make test` runs every test.
# Both bootstrap .venv themselves (scripts/bootstrap).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.bootstrapped
DATA   ?= courriel-data

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml scripts/bootstrap
	PYTHON=$(PYTHON) scripts/bootstrap
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python scripts/demo.py $(DATA)

test: $(STAMP) lint
	scripts/test-deps
	$(BIN)/pytest -q -n 2

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy

bench: $(STAMP)
	scripts/test-deps
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
