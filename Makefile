# Two commands do all set-up on a fresh machine:
#   make train   -> venv + install, train a mean-field agent, print its Nash gap, write plots
#   make test    -> venv + install, run the default test suite (slow tests excluded)
#   make docs    -> the documentation site in docs/_build/html (sphinx-build -W: any warning, a broken link or anchor fails)
VENV ?= .venv
PY := $(VENV)/bin/python
export OMP_NUM_THREADS := 1

.PHONY: install train test test-slow lint bench docs

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

train: install
	$(PY) -m sb3_meanfield.train --env MFGLinearQuadratic-v0 --algo td3

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

docs: $(VENV)/.docs-installed
	$(VENV)/bin/sphinx-build -E -W -q -c docs -b html . docs/_build/html
	@echo "docs: docs/_build/html/index.html"

$(VENV)/.docs-installed: $(VENV)/.installed setup.cfg pyproject.toml constraints.txt
	$(PY) -m pip install --quiet -c constraints.txt -e ".[docs]"
	touch $@
