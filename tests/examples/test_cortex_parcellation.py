"""The cortex example's training loop on a tiny sphere, so the example keeps working."""
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def example():
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield importlib.import_module("cortex_parcellation"), importlib.import_module("cortex_models")
    finally:
        sys.path.remove(str(EXAMPLES))


def _sphere_surfaces():
    import trimesh

    pytest.importorskip("fast_simplification", reason="re-triangulation needs pip install fast-simplification")
    from meshgdl.datasets.cortex import CortexSurface, retriangulate, rotate_surface

    mesh = trimesh.creation.icosphere(3)  # 642 vertices: levels of 512, 128, 32 nodes
    rng = np.random.default_rng(0)
    # a bumpy sphere: no symmetry, so farthest-point sampling never meets a tie
    v = np.asarray(mesh.vertices) * 50.0 * rng.uniform(0.9, 1.1, (len(mesh.vertices), 1))
    f = np.asarray(mesh.faces)
    features = rng.standard_normal((len(v), 3))
    labels = 1 + (v[:, 2] > 0) + 2 * (v[:, 0] > 0)  # four classes by quadrant
    features[labels == 1][:3] = np.nan
    labels[:3] = 0
    train = CortexSurface(v, f, features, labels.astype(np.int64))
    retri = retriangulate(train, 0.5, seed=1)
    return {"train": train, "mirrored": train, "retriangulated": retri, "rotated": rotate_surface(retri, seed=2)}


def test_every_model_trains_and_scores(example):
    script, models = example
    data = script.prepare(_sphere_surfaces(), points_k=6)
    assert all(torch.isfinite(item["intrinsic"]).all() for item in data.values())
    for name, spec in models.MODELS.items():
        torch.manual_seed(0)
        model = models.build_model(name, 4, 3000)
        assert abs(models.count_parameters(model) - 3000) < 0.35 * 3000, name
        losses = script.train(model, data["train"], steps=3, lr=0.01, progress=False)
        assert len(losses) == 3 and np.isfinite(losses).all(), name
        pred = script.predict(model, data["rotated"])
        assert pred.shape == (data["rotated"]["surface"].num_vertices,) and set(pred) <= {1, 2, 3, 4}


def test_invariant_models_ignore_the_rotation(example):
    """Models that read intrinsic inputs only give the same logits on a rotated surface."""
    script, models = example
    data = script.prepare(_sphere_surfaces(), points_k=6)
    for name in ("mlp", "feast", "iso", "gem", "gem_points"):
        torch.manual_seed(0)
        model = models.build_model(name, 4, 3000).eval()
        with torch.no_grad():
            out = model(*script.inputs(model, data["retriangulated"]))
            out_r = model(*script.inputs(model, data["rotated"]))
        # graphs are built in float64 and stored in float32: equal to float32 rounding
        torch.testing.assert_close(out, out_r, atol=1e-4, rtol=1e-4, msg=name)
    model = models.build_model("feast_xyz", 4, 3000).eval()
    with torch.no_grad():
        out = model(*script.inputs(model, data["retriangulated"]))
        out_r = model(*script.inputs(model, data["rotated"]))
    assert (out - out_r).abs().max() > 1e-2  # xyz inputs turn with the surface


def test_results_are_not_overwritten_without_asking(example, tmp_path):
    script, _ = example
    (tmp_path / "cortex_mesulam.md").write_text("earlier results")
    with pytest.raises(SystemExit, match="--overwrite"):
        script.main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "cortex_mesulam.md").read_text() == "earlier results"


@pytest.mark.slow
def test_quick_run_writes_table_and_figure(example, tmp_path):
    from tests.conftest import require_data

    require_data("brainspace", "conte69_32k_lh.gii")
    pytest.importorskip("matplotlib")
    script, _ = example
    script.main(["--quick", "--steps", "3", "--threads", "1", "--out", str(tmp_path)])
    table = (tmp_path / "cortex_mesulam.md").read_text()
    assert "copy by index (reference)" in table and "GemConv" in table and "FeaStConv" in table
    assert (tmp_path / "cortex_mesulam.png").stat().st_size > 10_000
    import json

    saved = json.loads((tmp_path / "cortex_mesulam.json").read_text())
    assert saved["connection"] == "intrinsic" and "commit" in saved["run"]
    assert "Ran on commit" in table and "intrinsic connection" in table
