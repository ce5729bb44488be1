import pytest
import torch

from meshgdl.geometry.tangent import first_tangent_neighbour
from meshgdl.graph import wrap_angle


def _reference(pos, normal, edge_index, min_sine=0.05):
    """The rule spelled out: for each node, scan its in-edges by id, take the first off the normal line."""
    out = torch.full_like(pos, float("nan"))
    for node in range(pos.shape[0]):
        for e in (edge_index[1] == node).nonzero()[:, 0].tolist():
            d = pos[edge_index[0, e]] - pos[node]
            n = normal[node] / normal[node].norm()
            if (d - (d @ n) * n).norm() > min_sine * d.norm():
                out[node] = d
                break
    return out


def test_first_tangent_neighbour_skips_edges_along_the_normal():
    gen = torch.Generator().manual_seed(0)
    pos = torch.randn(40, 3, dtype=torch.float64, generator=gen)
    src = torch.randint(0, 40, (200,), generator=gen)
    dst = torch.randint(0, 40, (200,), generator=gen)
    keep = src != dst
    edge_index = torch.stack([src[keep], dst[keep]])
    edge_index = torch.cat([edge_index, torch.stack([torch.arange(1, 41) % 40, torch.arange(40)])], 1)
    normal = torch.randn(40, 3, dtype=torch.float64, generator=gen)
    # make the first in-edge of every third node run along its normal, so the next one must be used
    for node in range(0, 40, 3):
        e = int((edge_index[1] == node).nonzero()[0, 0])
        normal[node] = pos[edge_index[0, e]] - pos[node]
    got = first_tangent_neighbour(pos, normal, edge_index)
    torch.testing.assert_close(got, _reference(pos, normal, edge_index), rtol=0, atol=0)


def test_first_tangent_neighbour_names_nodes_without_one():
    pos = torch.tensor([[0.0, 0, 0], [0, 0, 1], [1, 0, 0]], dtype=torch.float64)
    normal = torch.tensor([[0.0, 0, 1], [0, 0, 1], [0, 0, 1]], dtype=torch.float64)
    edge_index = torch.tensor([[1, 0, 0], [0, 1, 2]])
    with pytest.raises(ValueError, match="2 nodes have no neighbour off the normal line \\(first node 0\\)"):
        first_tangent_neighbour(pos, normal, edge_index)


def test_first_tangent_neighbour_counts_isolated_nodes_and_nodes_with_edges_only_along_the_normal():
    # node 3 has no edge at all; node 1's only edge runs along its normal; node 0 needs its second
    pos = torch.tensor([[0.0, 0, 0], [0, 0, 1], [1, 0, 0], [5, 5, 5]], dtype=torch.float64)
    normal = torch.tensor([[0.0, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1]], dtype=torch.float64)
    edge_index = torch.tensor([[1, 2, 0, 0], [0, 0, 1, 2]])
    with pytest.raises(ValueError, match="2 nodes have no neighbour off the normal line \\(first node 1\\)"):
        first_tangent_neighbour(pos, normal, edge_index)
    ptr = torch.tensor([0, 2, 3, 4, 4])
    with pytest.raises(ValueError, match="2 nodes have no neighbour off the normal line \\(first node 1\\)"):
        first_tangent_neighbour(pos, normal, edge_index, ptr=ptr)
    # with node 1's edge off the normal and node 3 gone, every node has a neighbour: the rule holds
    pos, normal = pos[:3], normal[:3]
    normal[1] = torch.tensor([1.0, 0, 0], dtype=torch.float64)
    got = first_tangent_neighbour(pos, normal, edge_index, ptr=ptr[:4])
    torch.testing.assert_close(got, _reference(pos, normal, edge_index), rtol=0, atol=0)
    assert got[0].tolist() == [1.0, 0, 0]  # node 0's first edge (from 1) runs along its normal


def test_framed_edges_with_reverse_pairs_matches_the_direct_computation():
    import trimesh

    from meshgdl.geometry import mesh_graph
    from meshgdl.geometry.tangent import framed_edges

    sphere = trimesh.creation.icosphere(2)
    g = mesh_graph(sphere.vertices * [1.0, 0.8, 1.3], sphere.faces, dtype=torch.float64, cache=False)
    log, transport = framed_edges(g.pos, g.frame, g.edge_index)
    log_pairs, transport_pairs = framed_edges(g.pos, g.frame, g.edge_index, edge_reverse=g.edge_reverse)
    assert torch.equal(log, log_pairs)
    # equal as angles: an edge turning by pi may come out as -pi
    assert float(wrap_angle(transport_pairs - transport).abs().max()) < 1e-14
    assert torch.equal(transport_pairs[g.edge_reverse], -transport_pairs)
