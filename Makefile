# Thin aliases for what CI runs. Every target creates the virtualenv it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-sqlite test-pg lint openapi migrate bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

## run: migrate an SQLite database under var/, print an admin key on first start, serve on 127.0.0.1:$PORT
run: $(STAMP)
	$(BIN)/points-service run

## test: the whole suite on SQLite, then on PostgreSQL when POINTS_TEST_DATABASE_URL is set
test: $(STAMP)
	env -u POINTS_TEST_DATABASE_URL $(BIN)/pytest -q
	@if [ -n "$$POINTS_TEST_DATABASE_URL" ]; then \
		echo "== again on PostgreSQL ($$POINTS_TEST_DATABASE_URL)"; \
		$(BIN)/pytest -q; \
	fi

test-sqlite: $(STAMP)
	env -u POINTS_TEST_DATABASE_URL $(BIN)/pytest -q

test-pg: $(STAMP)
	POINTS_TEST_DATABASE_URL=$${POINTS_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/points_test} $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check points_service tests migrations

openapi: $(STAMP)
	$(BIN)/points-service openapi write openapi.yaml

migrate: $(STAMP)
	$(BIN)/points-service db upgrade

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis

## bench: the issue-6 benchmark against PostgreSQL (1M practitioners, 200k decisions); prints one table
bench: $(STAMP)
	$(BIN)/python bench/run.py
