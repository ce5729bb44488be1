import healpy as hp
import numpy as np
import pytest
import torch

from meshgdl import FieldType, gauge_transform
from meshgdl.geometry import healpix_coarsen, healpix_graph
from meshgdl.graph import rotation_matrix
from meshgdl.nn import pool_healpix, unpool_healpix
from meshgdl.testing import assert_healpix_rotation_equivariant


def _transport_mean(x, graph):
    """y_i = mean_j R(a_ji) x_j + sum_j |log_ij| x_j: vectors, transported; equivariant by construction."""
    j, i = graph.edge_index
    moved = (rotation_matrix(graph.edge_transport) @ x[j].unsqueeze(-1)).squeeze(-1)
    moved = moved * graph.edge_logmap.norm(dim=-1, keepdim=True)
    return torch.zeros_like(x).index_add_(0, i, moved)


def test_exact_equivariance_of_transport_and_pooling():
    graph = healpix_graph(8, dtype=torch.float64)
    x = torch.randn(graph.num_nodes, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert assert_healpix_rotation_equivariant(_transport_mean, graph, x, FieldType.vectors(1), FieldType.vectors(1)) < 1e-12
    healpix_coarsen(graph)
    ft = FieldType([1, 1])
    x3 = torch.randn(2, graph.num_nodes, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert_healpix_rotation_equivariant(lambda v, g: unpool_healpix(pool_healpix(v, g, ft), g, ft), graph, x3, ft, ft)


def test_in_another_gauge_and_on_a_cut_sky():
    theta, _ = hp.pix2ang(8, np.arange(768), nest=True)
    graph = healpix_graph(8, mask=np.abs(theta - np.pi / 2) > 0.3, dtype=torch.float64)
    graph = gauge_transform(graph, torch.rand(graph.num_nodes, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 6)
    x = torch.randn(graph.num_nodes, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert_healpix_rotation_equivariant(_transport_mean, graph, x, FieldType.vectors(1), FieldType.vectors(1))


def test_a_layer_that_breaks_the_symmetry_is_caught():
    graph = healpix_graph(4, dtype=torch.float64)
    x = torch.randn(graph.num_nodes, 1, dtype=torch.float64)
    with pytest.raises(AssertionError, match="90 degrees"):
        assert_healpix_rotation_equivariant(lambda v, g: v * g.pos[:, :1], graph, x)  # depends on longitude
    # vectors treated as two scalars: not gauge-aware, also caught (the transport mixes them)
    with pytest.raises(AssertionError):
        turned = gauge_transform(graph, torch.rand(graph.num_nodes, dtype=torch.float64) * 6)
        assert_healpix_rotation_equivariant(_transport_mean, turned, torch.randn(graph.num_nodes, 2, dtype=torch.float64))
