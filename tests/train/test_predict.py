"""`meshgdl evaluate` and `meshgdl predict` on the user's own data: HEALPix maps and labelled meshes."""
import healpy as hp
import numpy as np
import pytest
import torch
import trimesh

from meshgdl.cli import main
from meshgdl.geometry import read_mesh
from meshgdl.train import evaluate_run, load_run

from .conftest import TINY_GEM, write_config

NSIDE = 4


def sky_files(folder, n=2):
    """Input maps (two fields) and integer target maps: class 1 north of the equator."""
    z = hp.pix2vec(NSIDE, np.arange(hp.nside2npix(NSIDE)))[2]
    rng = np.random.default_rng(0)
    maps, targets = [], []
    for i in range(n):
        m, t = folder / f"map{i}.fits", folder / f"target{i}.fits"
        hp.write_map(str(m), [z + 0.1 * rng.normal(size=z.size), rng.normal(size=z.size)], dtype=np.float64)
        hp.write_map(str(t), (z > 0).astype(np.float64), dtype=np.float64)
        maps.append(str(m))
        targets.append(str(t))
    return maps, targets


@pytest.fixture(scope="module")
def sky_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sky")
    maps, targets = sky_files(tmp)
    model = {"name": "HealSwinUNet", "embed_dim": 4, "depths": [1, 1], "heads": [1, 2]}
    config = write_config(tmp / "c.toml", top={"output": str(tmp / "run")}, model=model,
                          data={"name": "healpix", "maps": maps, "targets": targets, "num_classes": 2},
                          schedule={"epochs": 2}, train={"batch_size": 2, "val_fraction": 0.0, "device": "cpu"})
    assert main(["train", config, "-q"]) == 0
    return tmp


def test_evaluate_reports_the_metrics_of_the_last_checkpoint(sky_run, capsys):
    assert main(["evaluate", str(sky_run / "run")]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "miou" in out and "step" in out
    results = evaluate_run(sky_run / "run")
    assert results["step"] == 2 and results["graphs"] == 2 and 0 <= results["accuracy"] <= 1


def test_predict_writes_a_healpix_map_with_the_models_classes(sky_run):
    out = sky_run / "pred.fits"
    assert main(["predict", str(sky_run / "run"), str(sky_run / "map0.fits"), "-o", str(out)]) == 0
    pred = hp.read_map(str(out), dtype=np.float64)
    trainer = load_run(sky_run / "run")
    from torch_geometric.data import Batch

    graph = trainer.graphs[0]
    expect = trainer.model(Batch.from_data_list([graph])).argmax(-1).double().numpy()
    ring = hp.nest2ring(NSIDE, graph.pixel.numpy())
    assert pred.shape == (hp.nside2npix(NSIDE),) and np.array_equal(pred[ring], expect)
    assert main(["predict", str(sky_run / "run"), str(sky_run / "map0.fits"), "-o", str(out)]) == 2
    assert main(["predict", str(sky_run / "run"), str(sky_run / "map0.fits"), "-o", str(sky_run / "p.ply")]) == 2


def test_a_regression_on_healpix_maps_predicts_values_in_a_fits_map(tmp_path):
    maps, targets = sky_files(tmp_path, n=1)
    model = {"name": "HealSwinUNet", "embed_dim": 4, "depths": [1, 1], "heads": [1, 2]}
    config = write_config(tmp_path / "c.toml", top={"output": str(tmp_path / "run")}, model=model,
                          data={"name": "healpix", "maps": maps, "targets": targets}, schedule={"epochs": 1},
                          train={"batch_size": 1, "val_fraction": 0.0, "device": "cpu", "dtype": "float64"})
    assert main(["train", config, "-q"]) == 0
    assert main(["predict", str(tmp_path / "run"), maps[0], "-o", str(tmp_path / "p.fits")]) == 0
    trainer = load_run(tmp_path / "run")
    from torch_geometric.data import Batch

    graph = trainer.graphs[0]
    expect = trainer.model(Batch.from_data_list([graph]))[:, 0].detach().numpy()
    pred = hp.read_map(str(tmp_path / "p.fits"), dtype=np.float64)
    assert np.array_equal(pred[hp.nest2ring(NSIDE, graph.pixel.numpy())], expect)
    assert evaluate_run(tmp_path / "run").keys() >= {"mse", "mae", "loss"}


def labelled_meshes(folder, n=3):
    folder.mkdir()
    for i in range(n):
        mesh = trimesh.creation.icosphere(subdivisions=1)
        mesh.vertices *= 1 + 0.1 * i
        mesh.export(folder / f"shape{i}.ply")
        z = mesh.vertices[:, 2]
        np.savetxt(folder / f"shape{i}.csv", np.c_[(z > 0).astype(int), z**2], delimiter=",",
                   header="label,height", comments="", fmt=["%d", "%.6f"])
    return folder


def read_ply_labels(path):
    lines = path.read_text().splitlines()
    n = int(next(line for line in lines if line.startswith("element vertex")).split()[-1])
    start = lines.index("end_header") + 1
    return np.array([int(line.split()[3]) for line in lines[start:start + n]])


def test_a_folder_of_labelled_meshes_trains_and_predicts_a_ply_with_labels(tmp_path):
    folder = labelled_meshes(tmp_path / "meshes")
    config = write_config(tmp_path / "c.toml", top={"output": str(tmp_path / "run")}, model=TINY_GEM,
                          data={"name": "mesh_folder", "folder": str(folder), "feature_columns": ["height"]},
                          schedule={"epochs": 1}, train={"batch_size": 2, "val_fraction": 0.34, "device": "cpu"})
    assert main(["train", config, "-q"]) == 0
    out = tmp_path / "pred.ply"
    assert main(["predict", str(tmp_path / "run"), str(folder / "shape0.ply"), "-o", str(out)]) == 0
    vertices, faces = read_mesh(out)
    v0, f0 = read_mesh(folder / "shape0.ply")
    assert np.array_equal(vertices, v0) and np.array_equal(faces, f0)
    trainer = load_run(tmp_path / "run")
    from torch_geometric.data import Batch

    graph = next(g for g in trainer.graphs if g.num_nodes == len(v0) and torch.allclose(g.pos.double(), torch.as_tensor(v0)))
    expect = trainer.model(Batch.from_data_list([graph])).argmax(-1).numpy()
    assert np.array_equal(read_ply_labels(out), expect)
    gifti = tmp_path / "pred.label.gii"
    assert main(["predict", str(tmp_path / "run"), str(folder / "shape0.ply"), "-o", str(gifti)]) == 0
    import nibabel

    image = nibabel.load(gifti)
    assert image.darrays[0].intent == nibabel.nifti1.intent_codes["NIFTI_INTENT_LABEL"]
    assert np.array_equal(image.darrays[0].data, expect)


def test_a_mesh_without_its_csv_is_named(tmp_path):
    from meshgdl.train.data import mesh_folder

    folder = labelled_meshes(tmp_path / "meshes", n=1)
    (folder / "shape0.csv").unlink()
    with pytest.raises(FileNotFoundError, match="shape0.csv for the per-vertex values of .*shape0.ply"):
        mesh_folder(torch.float32, 0, str(folder), "label", [], True, 0)


def test_lcnn_trains_on_lattice_gauge_fields_and_predict_names_what_it_writes(tmp_path, capsys):
    data = {"name": "lattice_gauge", "root": str(tmp_path / "cache"), "group": "U1", "shape": [4, 4],
            "num_configs": 4, "n_therm": 5, "n_decor": 1}
    config = write_config(tmp_path / "c.toml", top={"output": str(tmp_path / "run")},
                          model={"name": "LCNN", "channels": [2]}, data=data,
                          train={"batch_size": 2, "val_fraction": 0.25, "device": "cpu", "dtype": "float64"},
                          schedule={"epochs": 1})
    assert main(["train", config, "-q"]) == 0
    assert "val mse" in capsys.readouterr().out
    (tmp_path / "c.fits").write_text("")
    assert main(["predict", str(tmp_path / "run"), str(tmp_path / "c.fits"), "-o", str(tmp_path / "o.fits")]) == 2
    assert "trained on a lattice data set (use `meshgdl evaluate`)" in capsys.readouterr().err
