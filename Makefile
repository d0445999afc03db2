# Two commands for users: `make demo` and `make test` (see README.md). Both create .venv on first use.
# Works with any python3 >= 3.10 that has venv + pip; no conda needed (conda users: environment.yml).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.hea-installed
NOTEBOOKS := $(wildcard notebooks/[0-9][0-9]_*.ipynb)

# `make demo` inputs and options; override on the command line, e.g. `make demo JOBS=2`.
DEMO_INPUTS ?= demo:hea6 demo:hea7 demo:hea7_coreshell
JOBS ?= 1
RUN  := runs/demo-$(shell date +%Y%m%d-%H%M%S)
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k runner -x"`.
PYTEST_ARGS ?=
# Seconds an nbval cell may run before it fails (a hang becomes a named failure, not a stall).
CELL_TIMEOUT ?= 300
# Extra JupyterLab arguments, e.g. `make lab LAB_ARGS="--no-browser --port 8890"`.
LAB_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup demo demo-data test lab notebooks

help:
	@echo "make demo       install (first time), write demo data, run every notebook headless -> runs/demo-<time>/"
	@echo "make test       install (first time), run the whole test suite (pytest + nbval over notebooks/)"
	@echo "make lab        start JupyterLab on notebooks/"
	@echo "make notebooks  re-execute the committed notebooks in place (fresh outputs for nbval)"

# Virtual environment + dependencies; redone only when requirements.txt or pyproject.toml change.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q -e .
	@touch $(STAMP)

setup: $(STAMP)

demo-data: $(STAMP)
	$(PY) -m helpers make-demo --out data/demo

demo: demo-data
ifeq ($(strip $(NOTEBOOKS)),)
	@echo "No notebooks/NN_*.ipynb yet: nothing to run."
else
	$(PY) -m helpers run $(DEMO_INPUTS) --out $(RUN) --jobs $(JOBS)
	@ln -sfn $(notdir $(RUN)) runs/latest
	@echo "Results: $(RUN)/<input>/{notebooks,figures,results}  (also runs/latest)"
	@echo "Report:  $(RUN)/index.html  (open it in a browser; works offline)"
endif

test: $(STAMP)
	$(PY) -m pytest tests $(wildcard notebooks) -ra --nbval --nbval-current-env \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=$(CELL_TIMEOUT) \
	    $(PYTEST_ARGS)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks $(LAB_ARGS) $(if $(filter 0,$(shell id -u)),--allow-root)

notebooks: $(STAMP)
	$(PY) -m helpers notebooks
