# Two commands do everything on a fresh machine:
#   make demo   set up, fetch the real data, run the main example (results under out/)
#   make test   set up, fetch the real data, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.meshgdl-installed

.PHONY: setup scatter data test demo bench clean-venv

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,gifti,fits,plot,examples]'
	touch $(STAMP)

setup: $(STAMP)

# torch-scatter ships only as source: built here (a few minutes, a C++ compiler and the Python
# headers needed), so that the tests cover both aggregation backends. A failed build prints a
# banner and its tests skip; under CI (CI=true, which .ci/run sets) it fails the run instead, so
# that CI never reports one backend as two. `make test SCATTER=0` opts out on purpose.
SCATTER ?= 1
scatter: $(STAMP)
	@if [ "$(SCATTER)" = 1 ] && ! $(BIN)/python -c "import torch_scatter" 2>/dev/null; then \
		echo "building torch-scatter (a few minutes)"; \
		if ! timeout 2400 $(BIN)/python -m pip install -q --no-build-isolation torch-scatter; then \
			echo "##########################################################################"; \
			echo "#  torch-scatter DID NOT BUILD: the tests of its backend will SKIP.       #"; \
			echo "#  It needs a C++ compiler and the Python headers, e.g. on Debian/Ubuntu: #"; \
			echo "#    sudo apt-get install build-essential python3-dev                     #"; \
			echo "#  then run 'make scatter' again; 'make test SCATTER=0' skips it.         #"; \
			echo "##########################################################################"; \
			if [ "$$CI" = true ]; then echo "CI=true: a CI run must test both backends, failing"; exit 1; fi; \
		fi; \
	fi

data: $(STAMP)
	$(BIN)/python -m meshgdl.datasets.fetch

test: data scatter
	$(BIN)/python -m pytest -q

demo: data
	$(BIN)/python examples/mesh_to_graph.py --out out/graphs
	$(BIN)/python examples/cortex_parcellation.py --quick --out out/cortex --overwrite

bench: data
	$(BIN)/python benchmarks/run.py

clean-venv:
	rm -rf $(VENV)
