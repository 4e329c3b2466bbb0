# Thin aliases for what CI runs. Every target creates the virtualenv it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-sqlite test-pg lint openapi migrate bench lock clean clean-data

# The exact versions of requirements-dev.lock (hash-checked), then the project itself without
# resolving anything again, so every machine and CI run gets the same packages.
$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

## lock: resolve pyproject.toml into requirements.lock (the image) and requirements-dev.lock (make);
## versions already locked stay unless pyproject.toml excludes them (delete a lock to move everything)
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv>=0.13,<0.14"
	$(BIN)/uv pip compile --quiet pyproject.toml --universal --python-version 3.11 --generate-hashes \
		-o requirements.lock
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --universal --python-version 3.11 \
		--generate-hashes -c requirements.lock -o requirements-dev.lock

## run: migrate the SQLite database var/points.db, print an admin key on first start, serve on 127.0.0.1:$PORT
run: $(STAMP)
	@echo "make run: POINTS_ALLOW_DEV_KEYS=1, so the built-in development keys may be used (never in production)"
	POINTS_ALLOW_DEV_KEYS=1 $(BIN)/points-service run

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

## lint: ruff (style; the rules read no clock), mypy (types), import-linter (layers, no cycles)
lint: $(STAMP)
	$(BIN)/ruff check points_service tests migrations bench
	$(BIN)/mypy
	$(BIN)/lint-imports

openapi: $(STAMP)
	$(BIN)/points-service openapi write openapi.yaml

migrate: $(STAMP)
	$(BIN)/points-service db upgrade

## clean: remove the virtualenv and the caches; var/ (the database of make run) is kept
clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
	@if [ -d var ]; then echo "kept var/ (the SQLite database of make run); make clean-data deletes it"; fi

## clean-data: delete var/, the SQLite database of make run with every API key in it
clean-data:
	@if [ -d var ]; then \
		echo "deleting var/, the SQLite database of make run:"; \
		ls -1 var | sed 's|^|  var/|'; \
		rm -rf var; \
	else \
		echo "nothing to delete: there is no var/"; \
	fi

## bench: the issue-6 benchmark against PostgreSQL (1M practitioners, 200k decisions); prints one table
bench: $(STAMP)
	$(BIN)/python bench/run.py
