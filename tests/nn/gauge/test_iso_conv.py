import pytest
import torch

from meshgdl.field_type import FieldType
from meshgdl.nn import IsoConv
from meshgdl.testing import assert_gauge_equivariant, assert_permutation_equivariant, assert_rotation_invariant

from ..domains import DOMAINS, domain


@pytest.mark.parametrize("name", DOMAINS)
def test_iso_conv_is_invariant_on_every_domain(name):
    graph, build = domain(name)
    conv = IsoConv(3, 4, num_radial=3, cutoff=float(graph.edge_logmap.norm(dim=-1).max())).double()
    with torch.no_grad():
        conv.root.bias.normal_()
    x = torch.randn(graph.num_nodes, 3, dtype=torch.float64)
    assert assert_permutation_equivariant(conv, x, graph) < 1e-10
    assert assert_gauge_equivariant(conv, x, graph, FieldType.scalars(3)) < 1e-10
    assert assert_rotation_invariant(conv, x, graph, build=build) < 1e-10


def test_iso_conv_matches_a_plain_loop():
    graph, _ = domain("torus")
    conv = IsoConv(2, 3, num_radial=2, cutoff=0.5, use_edge_weight=True, normalize=False).double()
    x = torch.randn(graph.num_nodes, 2, dtype=torch.float64)
    expected = conv.root(x).detach().clone()
    length = graph.edge_logmap.norm(dim=-1)
    for e in range(graph.num_edges):
        j, i = graph.edge_index[:, e].tolist()
        phi = torch.pi ** -0.25 * torch.exp(-0.5 * ((length[e] - torch.tensor([0.0, 0.5], dtype=torch.float64)) / 0.5) ** 2)
        kernel = (phi[:, None, None] * conv.weight).sum(0)
        expected[i] += graph.edge_weight[e] * x[j] @ kernel.detach()
    assert torch.allclose(conv(x, graph), expected, atol=1e-12)


def test_iso_conv_cannot_tell_directions_apart():
    # Mirroring every log map leaves the output unchanged: the layer sees lengths only.
    graph, _ = domain("grid")
    mirrored = graph.clone()
    mirrored.edge_logmap = graph.edge_logmap * torch.tensor([1.0, -1.0], dtype=torch.float64)
    conv = IsoConv(1, 2).double()
    x = torch.randn(graph.num_nodes, 1, dtype=torch.float64)
    assert torch.equal(conv(x, graph), conv(x, mirrored))


def test_iso_conv_arguments():
    assert repr(IsoConv(2, 3)) == "IsoConv(2, 3)"
    with pytest.raises(ValueError, match="cutoff"):
        IsoConv(2, 3, num_radial=2)
