# courriel: `make run` starts everything on loopback, `make test` runs every test.
# Both bootstrap .venv themselves (scripts/bootstrap).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.bootstrapped
DATA   ?= courriel-data

.PHONY: run test test-postgres lint bench fuzz clean

$(STAMP): pyproject.toml scripts/bootstrap
	PYTHON=$(PYTHON) scripts/bootstrap
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python scripts/demo.py $(DATA)

# tests/store runs on SQLite and PostgreSQL; these protocol tests run a second time with
# `courriel serve` on PostgreSQL (tests/pg.py: a private cluster); `make test-postgres`: all.
PG_PROTOCOL_TESTS := tests/pop3/test_transcripts.py tests/smtp/test_transcripts.py \
	tests/imap/test_messages.py tests/imap/test_condstore.py tests/imap/test_concurrent.py

test: $(STAMP) lint
	scripts/test-deps
	$(BIN)/pytest -q -n 2 --dist loadfile
	COURRIEL_TEST_BACKEND=postgres $(BIN)/pytest -q -n 2 --dist loadfile $(PG_PROTOCOL_TESTS)

test-postgres: $(STAMP)
	scripts/test-deps
	COURRIEL_TEST_BACKEND=postgres $(BIN)/pytest -q -n 2 tests/store tests/imap tests/pop3 tests/smtp -k "not bench"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts fuzz
	$(BIN)/mypy
	$(BIN)/mypy -p fuzz

bench: $(STAMP)
	scripts/test-deps
	$(BIN)/python -m bench

fuzz: $(STAMP)
	$(BIN)/python -m fuzz

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
