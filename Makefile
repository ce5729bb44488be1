# Two commands do everything on a fresh machine:
#   make demo   set up, fetch the real data, run the main example
#   make test   set up, fetch the real data, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.meshgdl-installed

.PHONY: setup data test demo bench clean-venv

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,gifti,fits]'
	touch $(STAMP)

setup: $(STAMP)

data: $(STAMP)
	$(BIN)/python -m meshgdl.datasets.fetch

test: data
	$(BIN)/python -m pytest -q

demo: data
	$(BIN)/python examples/mesh_to_graph.py

bench: data
	$(BIN)/python benchmarks/run.py

clean-venv:
	rm -rf $(VENV)
