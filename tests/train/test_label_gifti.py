"""Per-vertex labels of a mesh folder from label GIFTI files beside the surfaces."""
import numpy as np
import pytest
import torch
import trimesh

from meshgdl.cli import main
from meshgdl.train.data import mesh_folder
from meshgdl.train.metrics import read_metrics
from meshgdl.train.predict import write_label_gifti

from .conftest import write_config

nib = pytest.importorskip("nibabel")


def write_surface_gifti(path, vertices, faces):
    arrays = [nib.gifti.GiftiDataArray(np.asarray(vertices, np.float32), intent="NIFTI_INTENT_POINTSET"),
              nib.gifti.GiftiDataArray(np.asarray(faces, np.int32), intent="NIFTI_INTENT_TRIANGLE")]
    nib.save(nib.gifti.GiftiImage(darrays=arrays), str(path))


def gifti_folder(folder):
    """``a.ply`` with ``a.label.gii`` and ``b.surf.gii`` with ``b.label.gii``: labels by octant."""
    folder.mkdir()
    expected = {}
    for name, scale in (("a", 1.0), ("b", 1.2)):
        mesh = trimesh.creation.icosphere(subdivisions=1)
        v = np.asarray(mesh.vertices) * scale
        labels = (v[:, 0] > 0) + 2 * (v[:, 2] > 0)
        labels[0] = -1  # unlabelled
        if name == "a":
            mesh.vertices = v
            mesh.export(folder / "a.ply")
        else:
            write_surface_gifti(folder / "b.surf.gii", v, mesh.faces)
        write_label_gifti(folder / f"{name}.label.gii", labels, labels=True)
        expected[len(expected)] = labels
    return folder, expected


def test_labels_come_from_the_label_gifti_beside_each_mesh(tmp_path):
    folder, expected = gifti_folder(tmp_path / "meshes")
    data = mesh_folder(torch.float64, 0, str(folder), "label", [], True, 0)
    assert len(data.graphs) == 2  # the .label.gii files are not taken for meshes
    for k, graph in enumerate(data.graphs):
        assert graph.y.dtype == torch.long and np.array_equal(graph.y.numpy(), expected[k])
        assert torch.equal(graph.x, graph.pos)
    assert data.info.out_channels == 4 and data.info.task == "node"


def test_a_label_gifti_that_does_not_fit_its_mesh_is_refused(tmp_path):
    folder, _ = gifti_folder(tmp_path / "meshes")
    write_label_gifti(folder / "a.label.gii", np.zeros(5, dtype=int), labels=True, overwrite=True)
    with pytest.raises(ValueError, match="a.label.gii holds labels of shape \\[5\\], but its mesh has 42 vertices"):
        mesh_folder(torch.float32, 0, str(folder), "label", [], True, 0)
    write_label_gifti(folder / "a.label.gii", np.zeros(42, dtype=int), labels=True, overwrite=True)
    np.savetxt(folder / "a.csv", np.zeros((42, 1)), header="label", comments="")
    with pytest.raises(ValueError, match="both .*a.label.gii and column 'label' of .*a.csv give labels"):
        mesh_folder(torch.float32, 0, str(folder), "label", [], True, 0)


def test_gem_unet_trains_on_a_folder_of_label_giftis(tmp_path):
    folder, _ = gifti_folder(tmp_path / "meshes")
    config = write_config(tmp_path / "c.toml", top={"output": str(tmp_path / "run")},
                          model={"name": "GemUNet", "width": 2, "depth": 1, "max_frequency": 1, "sizes": [12]},
                          data={"name": "mesh_folder", "folder": str(folder)}, schedule={"epochs": 2},
                          train={"batch_size": 1, "val_fraction": 0.5, "device": "cpu"})
    assert main(["train", config, "-q"]) == 0
    rows = read_metrics(tmp_path / "run")
    assert [r["split"] for r in rows].count("val") == 2 and 0 <= float(rows[-1]["accuracy"]) <= 1
