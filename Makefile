# Nansen: the few verbs a newcomer needs. Everything installs itself into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
FLASK  := NANSEN_ENV=development $(BIN)/flask --app wsgi
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test lint setup dev-setup translations migrate demo bench bench-1m clean e2e-setup extract-messages

## run: set up, migrate the SQLite database, generate a demo caseload (once) and demo logins,
##      serve on http://127.0.0.1:5000
run: setup translations
	$(FLASK) db upgrade
	$(FLASK) crypto init
	$(FLASK) demo generate --cases 2000 --if-empty
	$(FLASK) demo users
	$(FLASK) run --host $(HOST) --port $(PORT)

## test: set up and run the whole test suite (SQLite; PostgreSQL when TEST_DATABASE_URL is set),
##       including the browser journeys (Debian's chromium, installed by scripts/ensure-chromium.sh)
test: dev-setup translations e2e-setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile $(PYTEST_ARGS)

## e2e-setup: Debian's chromium (apt, as root) and axe-core (npm) for tests/e2e; best effort on a
##            developer machine without root (the e2e tests then skip, except in CI where they fail)
e2e-setup:
	-sh scripts/ensure-chromium.sh
	@if command -v npm >/dev/null 2>&1; then \
	  [ -f tests/e2e/vendor/node_modules/axe-core/axe.min.js ] || npm ci --silent --prefix tests/e2e/vendor; \
	else echo "npm not found: the accessibility checks of tests/e2e need axe-core (npm ci --prefix tests/e2e/vendor)"; fi

## lint: ruff and the architecture contracts
lint: dev-setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed
dev-setup: $(VENV)/.installed-dev

## translations: compile the message catalogues (.po -> .mo)
translations: setup
	$(BIN)/pybabel -q compile -d app/translations

## extract-messages: refresh app/translations/messages.pot and merge into every language
extract-messages: setup
	$(BIN)/pybabel -q extract -F babel.cfg -k lazy_gettext -k _l -k N_ -o app/translations/messages.pot --ignore-dirs=".venv .git instance" .
	$(BIN)/pybabel -q update -i app/translations/messages.pot -d app/translations --no-fuzzy-matching

migrate: setup
	$(FLASK) db upgrade

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

## bench: the performance suite (PERFORMANCE.md), quick size; writes docs/performance.md
##        The real run: make bench-1m (PostgreSQL, a million cases generated once and kept in the
##        database nansen_bench_1m: over an hour to make on a busy 2-core machine, minutes to reuse)
BENCH_CASES ?= 10000
BENCH_ARGS ?=
bench: dev-setup
	$(BIN)/python bench/run.py --database sqlite --cases $(BENCH_CASES) $(BENCH_ARGS)
	$(BIN)/python bench/run.py --database postgresql --cases $(BENCH_CASES) $(BENCH_ARGS)

bench-1m: dev-setup
	$(BIN)/python bench/run.py --database postgresql --cases 1000000 --reuse --scratch nansen_bench_1m \
	  --section postgresql-1m $(BENCH_ARGS)
