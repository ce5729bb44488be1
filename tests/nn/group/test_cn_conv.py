import math

import pytest
import torch

from meshgdl.field_type import FieldType
from meshgdl.nn import CNGroupConv, CNLiftingConv, CNOrientationPool, CyclicFieldType
from meshgdl.testing import (assert_gauge_equivariant, assert_permutation_equivariant, assert_rotation_invariant,
                             assert_symmetry_equivariant)

from ..domains import Chain, domain, grid_rotation, randomize_biases


def cnn(order):
    return randomize_biases(Chain(CNLiftingConv(2, 3, order), CNGroupConv(3, 4, order), CNGroupConv(4, 2, order)))


@pytest.mark.parametrize("order", [4, 8])
def test_group_cnn_is_exactly_equivariant_to_quarter_turns_of_the_grid(order):
    graph, build = domain("grid")
    perm, angles = grid_rotation(8)
    net = cnn(order)
    image = torch.randn(graph.num_nodes, 2, dtype=torch.float64)
    out_type = CyclicFieldType(2, order)
    assert assert_symmetry_equivariant(net, image, graph, perm, angles, FieldType.scalars(2), out_type) < 1e-10
    invariant = Chain(net, CNOrientationPool(order))
    assert assert_symmetry_equivariant(invariant, image, graph, perm, angles, FieldType.scalars(2)) < 1e-10
    assert assert_permutation_equivariant(net, image, graph) < 1e-10
    assert assert_rotation_invariant(net, image, graph, build=build) < 1e-10


def test_group_cnn_is_equivariant_under_gauges_in_its_group():
    graph, _ = domain("grid")
    order = 4
    gen = torch.Generator().manual_seed(3)
    angles = (math.pi / 2) * torch.randint(0, 4, (graph.num_nodes,), generator=gen).double()
    x = torch.randn(graph.num_nodes, 2, dtype=torch.float64)
    assert assert_gauge_equivariant(cnn(order), x, graph, FieldType.scalars(2), CyclicFieldType(2, order),
                                    angles=angles) < 1e-10
    with pytest.raises(ValueError, match="multiples of 2 pi / 4"):
        assert_gauge_equivariant(cnn(order), x, graph, FieldType.scalars(2), CyclicFieldType(2, order))


def test_lifting_conv_matches_a_loop_over_edges():
    graph, _ = domain("grid")
    conv = CNLiftingConv(2, 3, 4, bandwidth=2).double()
    x = torch.randn(graph.num_nodes, 2, dtype=torch.float64)
    out = conv(x, graph).detach().unflatten(1, (3, 4))
    expected = torch.zeros_like(out)
    deg = torch.bincount(graph.edge_index[1], minlength=graph.num_nodes)
    with torch.no_grad():
        for e in range(graph.num_edges):
            j, i = graph.edge_index[:, e].tolist()
            theta = math.atan2(graph.edge_logmap[e, 1], graph.edge_logmap[e, 0])
            for r in range(4):
                phi = theta - 2 * math.pi * r / 4
                psi = conv.weight[:, :, 0] + sum(conv.weight[:, :, 2 * k - 1] * math.cos(k * phi)
                                                 + conv.weight[:, :, 2 * k] * math.sin(k * phi) for k in (1, 2))
                expected[i, :, r] += psi @ x[j] / deg[i]
        expected += (x @ conv.root.T + conv.bias)[:, :, None]
    assert torch.allclose(out, expected, atol=1e-12)


def test_cyclic_field_type_shift_and_errors():
    t = CyclicFieldType(2, 4)
    x = torch.arange(8.0)[None]
    assert torch.equal(t.transform(x, torch.tensor([math.pi / 2])), torch.tensor([[1.0, 2, 3, 0, 5, 6, 7, 4]]))
    with pytest.raises(ValueError, match="channels"):
        t.transform(torch.zeros(1, 6), torch.zeros(1))
    with pytest.raises(ValueError, match="positive"):
        CyclicFieldType(0, 4)
    assert repr(CNGroupConv(2, 3, 4)) == "CNGroupConv(2, 3, order=4)"
