# Millwright: the README's two commands are `make demo` and `make test`.
# Python 3.11: python3.11 on the PATH, else python3 if it is 3.11 (checked below).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint install clean browser

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { echo "Python 3.11 is required (make PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel

# Re-install only when the dependency list changes.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/millwright demo run $(DEMO_ARGS)

# The browser tests drive Debian's Chromium (Playwright's own download is not available).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || { echo "could not install chromium (apt-get install chromium)"; exit 1; }

test: $(STAMP) browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy hub plant_node federation baselines policies millwright.py
	$(VENV)/bin/lint-imports
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m benchmarks $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy hub plant_node federation baselines policies millwright.py
	$(VENV)/bin/lint-imports

clean:
	rm -rf var .pytest_cache
