# Two commands on a fresh machine with Python 3.11+ and make:
#   make demo   - create .venv, install castroom, run the demo
#   make test   - create .venv, install with test extras, run the whole suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test fuzz bench lint typecheck clean web screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# An editable install runs castroom from this folder: compile its modules once here, so
# the first commands do not (pip compiles a wheel's modules when it installs them).
$(VENV)/.installed: pyproject.toml core/_talent.c core/_ywalk.c | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m compileall -q core plugins sync
	touch $@

$(VENV)/.installed-test: pyproject.toml core/_talent.c core/_ywalk.c | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m compileall -q core plugins sync
	touch $(VENV)/.installed $@

tests/interop/node_modules: tests/interop/package.json
	@if command -v npm >/dev/null 2>&1; then \
		cd tests/interop && npm install --no-audit --no-fund --silent && touch node_modules; \
	else echo "npm not found: the Yjs interoperability tests will be skipped"; fi

# The dashboard's bundle (sync/web/static/, committed): rebuild after changing sync/web/src/.
sync/web/node_modules: sync/web/package.json sync/web/package-lock.json
	cd sync/web && npm ci --no-audit --no-fund --silent && touch node_modules

web: sync/web/node_modules
	cd sync/web && node build.mjs

# docs/screenshots/: each dashboard view on the demo production, in Debian's chromium.
screenshots: $(VENV)/.installed-test
	$(BIN)/python tests/screenshots.py

demo: $(VENV)/.installed
	$(BIN)/castroom demo

test: $(VENV)/.installed-test $(if $(wildcard tests/interop/package.json),tests/interop/node_modules)
	$(BIN)/python -m pytest -q

# The long random exploration: every property test at random (no fixed seed), with
# CASTROOM_FUZZ_SCALE (default 20) times the examples CI runs. Not part of `make test`.
fuzz: $(VENV)/.installed-test
	CASTROOM_HYPOTHESIS=fuzz $(BIN)/python -m pytest -q -p no:cacheprovider --timeout=0 \
		-k "$(or $(FUZZ_K),.)" $(or $(FUZZ_TESTS),tests)

bench: $(VENV)/.installed
	$(BIN)/python -m bench

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy core plugins sync

clean:
	rm -rf $(VENV) build dist *.egg-info
