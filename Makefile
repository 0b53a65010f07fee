# pinnflow: `make test` and `make demo` work on a fresh machine with Python >= 3.10 and pip.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
# pytest-xdist worker processes (compilation is single-threaded, so two processes use both cores)
JOBS   ?= 2

.PHONY: install test test-slow demo lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n $(JOBS) --dist loadfile

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow -n $(JOBS) --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check pinnflow problems experiments tests

demo: $(STAMP)
	$(PY) -m experiments.demo

clean:
	rm -rf $(VENV) runs .pytest_cache
