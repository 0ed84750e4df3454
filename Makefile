# The two commands of the README: `make lab` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8888
# `make lab NOBROWSER=1` starts JupyterLab headless (print the URL, open no browser).
NOBROWSER ?=

.PHONY: lab test unit notebooks bench execute clean student book browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/00_start_here.ipynb --port=$(PORT) $(if $(NOBROWSER),--no-browser --ServerApp.open_browser=False)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile

unit: $(STAMP)
	$(BIN)/python -m pytest tests

notebooks: $(STAMP)
	$(BIN)/python -m pytest notebooks

# Re-execute notebooks and keep only the outputs nbval compares (see README, Contributing).
execute: $(STAMP)
	$(BIN)/python tools/execute_notebooks.py $(NB)

bench: $(STAMP)
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# Student copies (solutions removed, checks kept) into student/; see tools/make_student.py.
student: $(STAMP)
	$(BIN)/python tools/make_student.py

# The static, readable rendering: every notebook executed to HTML plus an index, in _book/ (offline).
book: $(STAMP)
	$(BIN)/python tools/build_book.py

# Every notebook run in JupyterLab in headless Chromium (installs chromium/playwright if missing);
# part of `make test`, this runs it alone. Screenshots land in artifacts/browser/.
browser: $(STAMP)
	$(BIN)/python -m pytest -p no:xdist tests/test_browser.py
