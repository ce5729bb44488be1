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

# torch-scatter ships only as source: a best-effort build (a few minutes), so that the tests cover
# both aggregation backends; `make test SCATTER=0` skips it and those tests skip.
SCATTER ?= 1
scatter: $(STAMP)
	@if [ "$(SCATTER)" = 1 ] && ! $(BIN)/python -c "import torch_scatter" 2>/dev/null; then \
		echo "building torch-scatter (optional, a few minutes)"; \
		timeout 1200 $(BIN)/python -m pip install -q --no-build-isolation torch-scatter \
			|| echo "torch-scatter did not build; its tests will skip"; \
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
