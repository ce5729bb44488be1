import pytest
import torch

from meshgdl.cli import main
from meshgdl.datasets import IsingDataset
from meshgdl.geometry.lattice import lattice_graph
from meshgdl.train.data import ising
from meshgdl.train.metrics import read_metrics
from tests.conftest import require_data

from .conftest import TINY_GEM, write_config


def edges(graph):
    return set(map(tuple, graph.edge_index.t().tolist()))


def test_ising_spins_sit_on_a_torus_with_the_neighbours_of_their_lattice(ising_root):
    """The spins come row-major from the lattice; the grid must give each spin the same four
    neighbours, or the model would see another configuration than the one simulated."""
    options = dict(shape=[4, 6], temperatures=[1.5], num_configs=2, n_therm=5, n_decor=1)
    data = ising(torch.float64, 0, ising_root, **options)
    raw = IsingDataset(ising_root, shape=(4, 6), temperatures=(1.5,), num_configs=2, n_therm=5, n_decor=1,
                       progress=False)
    graph = data.graphs[0]
    assert edges(graph) == edges(lattice_graph((4, 6)))
    assert torch.equal(graph.x, raw[0].x.double()) and graph.x.dtype == torch.float64
    assert data.info.task == "graph" and data.info.labels and int(graph.y) == 1  # T = 1.5 < T_c


@pytest.mark.slow
def test_cortex_trains_a_step_on_the_fetched_template(tmp_path):
    require_data("brainspace", "conte69_32k_lh.gii")
    config = write_config(tmp_path / "c.toml", top={"output": str(tmp_path / "run")}, model=TINY_GEM,
                          data={"name": "cortex", "resolution": 0.05}, schedule={"epochs": 1},
                          train={"batch_size": 1, "val_fraction": 0.5, "device": "cpu"})
    assert main(["train", config, "-q"]) == 0
    rows = read_metrics(tmp_path / "run")
    assert [r["split"] for r in rows] == ["train", "val"] and 0 <= float(rows[1]["accuracy"]) <= 1
