import math

import pytest
import torch

from meshgdl.field_type import FieldType
from meshgdl.nn import CNGroupConv, CNOrientationPool, DihedralFieldType, DNGroupConv, DNLiftingConv
from meshgdl.testing import assert_gauge_equivariant, assert_permutation_equivariant, assert_symmetry_equivariant

from ..domains import Chain, domain, grid_positions, grid_rotation, randomize_biases


def dcnn(order):
    return randomize_biases(Chain(DNLiftingConv(2, 3, order), DNGroupConv(3, 2, order))).double()


def _element(r, s, n):
    """The 2 x 2 matrix of rho^r mu^s: mu reflects across e1, rho turns by 2 pi / n."""
    a = 2 * math.pi * r / n
    rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
    return rot @ torch.diag(torch.tensor([1.0, -1.0 if s else 1.0], dtype=torch.float64))


@pytest.mark.parametrize("order", [3, 4])
def test_product_table_is_the_composition_of_rotations_and_reflections(order):
    table = DihedralFieldType(1, order).product_table()
    mats = [_element(h % order, h // order, order) for h in range(2 * order)]
    for h in range(2 * order):
        for g in range(2 * order):
            assert torch.allclose(mats[h] @ mats[g], mats[int(table[h, g])], atol=1e-12)


def test_dihedral_cnn_is_equivariant_under_quarter_turn_gauges_and_grid_rotations():
    graph, _ = domain("grid")
    gen = torch.Generator().manual_seed(1)
    angles = (math.pi / 2) * torch.randint(0, 4, (graph.num_nodes,), generator=gen).double()
    x = torch.randn(graph.num_nodes, 2, dtype=torch.float64)
    out_type = DihedralFieldType(2, 4)
    assert assert_gauge_equivariant(dcnn(4), x, graph, FieldType.scalars(2), out_type, angles=angles) < 1e-10
    perm, turn = grid_rotation(8)
    assert assert_symmetry_equivariant(dcnn(4), x, graph, perm, turn, FieldType.scalars(2), out_type) < 1e-10
    assert assert_permutation_equivariant(dcnn(4), x, graph) < 1e-10


@pytest.mark.parametrize("order", [2, 4])
def test_dihedral_cnn_is_exactly_equivariant_to_the_reflection_of_the_grid(order):
    # the mirror (a, b) -> (a, -b) maps the grid onto itself and each frame (e1, e2) onto (e1, -e2):
    # the reflection mu acting on orientations
    graph, _ = domain("grid")
    pos = grid_positions(8)
    mirrored = torch.stack([pos[:, 0], -pos[:, 1]], -1)
    perm = ((mirrored[:, None] - pos[None, :, :2]).norm(dim=-1) < 1e-9).int().argmax(1)
    x = torch.randn(graph.num_nodes, 2, dtype=torch.float64)
    t = DihedralFieldType(2, order)
    net = dcnn(order)
    with torch.no_grad():
        y = net(x, graph)
        moved = net(x[perm], graph)
        assert (moved - t.act(y[perm], 0, True)).abs().max() < 1e-10
        assert (moved - y[perm]).abs().max() > 1e-3  # the reflection does act on the orientations
        pooled = Chain(net, CNOrientationPool(2 * order))
        assert (pooled(x[perm], graph) - pooled(x, graph)[perm]).abs().max() < 1e-10
        # a C_N network is not equivariant to it
        cn = randomize_biases(CNGroupConv(1, 1, order)).double()
        z = torch.randn(graph.num_nodes, order, dtype=torch.float64)
        assert (cn(z[perm], graph) - cn(z, graph)[perm]).abs().max() > 1e-3


def test_act_and_errors():
    t = DihedralFieldType(1, 4)
    x = torch.arange(8.0)[None]
    # rho h: r moves by one in both halves, as a frame turned by a quarter turn sees it
    assert torch.equal(t.act(x, 1, False), t.transform(x, torch.tensor([math.pi / 2])))
    assert torch.equal(t.act(x, 1, False), torch.tensor([[1.0, 2, 3, 0, 5, 6, 7, 4]]))
    assert torch.equal(t.act(t.act(x, 1, True), 1, True), x)  # reflections are involutions
    assert t.dim == 8 and t != DihedralFieldType(2, 4) and t == DihedralFieldType(1, 4)
    with pytest.raises(ValueError, match="channels"):
        t.act(torch.zeros(1, 6), 0, True)
    assert repr(DNGroupConv(2, 3, 4)) == "DNGroupConv(2, 3, order=4)"
    assert repr(DNLiftingConv(2, 3, 4)) == "DNLiftingConv(2, 3, order=4)"
    assert DNGroupConv(2, 3, 4).weight.shape == (3, 2, 8, 9)
