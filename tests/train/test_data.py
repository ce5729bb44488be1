import torch

from meshgdl.datasets import IsingDataset
from meshgdl.geometry.lattice import lattice_graph
from meshgdl.train.data import ising


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
