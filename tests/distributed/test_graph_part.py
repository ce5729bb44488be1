"""The partition tables against brute force over the edge list, in one process."""
import pytest
import torch

from meshgdl import FieldType
from meshgdl.distributed import build_part, partition_graph
from meshgdl.nn import GemConv

from .cases import icosphere_graph, sky_graph


def _graph_and_parts(name, num_parts=3):
    graph = icosphere_graph() if name == "mesh" else sky_graph()
    if name == "mesh":  # the user's own assignment: slabs along z
        z = graph.pos[:, 2].contiguous()
        assignment = torch.bucketize(z, torch.quantile(z, torch.tensor([1 / 3, 2 / 3], dtype=z.dtype)))
    else:
        from meshgdl.distributed import assign_parts

        assignment = assign_parts(graph, num_parts)
    return graph, assignment, partition_graph(graph, assignment=assignment)


@pytest.mark.parametrize("name", ["mesh", "sky"])
def test_parts_match_brute_force(name):
    graph, a, parts = _graph_and_parts(name)
    edges = graph.edge_index.t().tolist()
    a = a.tolist()
    owned_all = torch.cat([p.owned for p in parts]).tolist()
    assert sorted(owned_all) == list(range(graph.num_nodes))  # every node owned exactly once
    for part in parts:
        r = part.rank
        owned = [u for u in range(graph.num_nodes) if a[u] == r]
        assert part.owned.tolist() == owned
        local_edges = [e for e, (j, i) in enumerate(edges) if a[i] == r]
        needed = {edges[e][0] for e in local_edges} - set(owned)
        halo = part.node_global[part.num_owned:].tolist()
        assert sorted(halo) == sorted(needed) and len(halo) == len(needed)
        assert halo == sorted(halo, key=lambda u: (a[u], u))
        # the local graph is the global one restricted to the owned targets' edges
        assert part.edge_global.tolist() == local_edges
        sub = part.graph
        assert sub.num_nodes == len(owned) + len(halo)
        assert part.node_global[sub.edge_index].t().tolist() == [edges[e] for e in local_edges]
        for key in ("edge_logmap", "edge_transport") + (("edge_weight",) if name == "mesh" else ()):
            assert torch.equal(sub[key], graph[key][local_edges])
        for key in ("pos", "frame", "node_area") + (("pixel",) if name == "sky" else ()):
            assert torch.equal(sub[key], graph[key][part.node_global])
        sub.validate()
        # what r sends to q: its owned nodes that have an edge into a node of q, in global order
        sent = part.node_global[part.send_index].split(part.send_counts)
        for q in range(part.num_parts):
            expect = sorted({j for j, i in edges if a[j] == r and a[i] == q and q != r})
            assert sent[q].tolist() == expect
            assert part.send_counts[q] == parts[q].recv_counts[r]


@pytest.mark.parametrize("name", ["mesh", "sky"])
def test_layer_on_parts_with_simulated_exchange(name):
    """Each part's halo filled from the other parts' send tables (what all_to_all moves) gives
    the whole graph's GemConv output at the owned nodes."""
    graph, _, parts = _graph_and_parts(name)
    torch.manual_seed(0)
    conv = GemConv(FieldType.uniform(2, 2), FieldType.uniform(2, 1)).double()
    x = torch.randn(graph.num_nodes, conv.in_type.dim, dtype=torch.float64)
    y = conv(x, graph)
    owned_x = [x[p.owned] for p in parts]
    for part in parts:
        received = [owned_x[q][parts[q].send_index].split(parts[q].send_counts)[part.rank] for q in range(len(parts))]
        x_local = torch.cat([owned_x[part.rank], *received])
        torch.testing.assert_close(conv(x_local, part.graph)[:part.num_owned], y[part.owned], atol=1e-13, rtol=0)


def test_face_and_edge_reverse_are_dropped():
    graph, a, _ = _graph_and_parts("mesh")
    graph.edge_reverse = torch.arange(graph.num_edges)
    part = build_part(graph, a, 0)
    assert "face" in graph and "face" not in part.graph and "edge_reverse" not in part.graph


@pytest.mark.parametrize("assignment, error, match", [
    (lambda n: torch.zeros(n), TypeError, "integer part ids"),
    (lambda n: torch.zeros(n + 1, dtype=torch.long), ValueError, r"one part id per node, shape \[162\]"),
    (lambda n: torch.full((n,), -1), ValueError, "must be >= 0"),
    (lambda n: torch.arange(n) % 3 * 2, ValueError, r"parts \[1, 3\] own no nodes"),
])
def test_bad_assignment_is_refused(assignment, error, match):
    graph = icosphere_graph()
    with pytest.raises(error, match=match):
        build_part(graph, assignment(graph.num_nodes), 0)


def test_bad_rank_and_missing_arguments():
    graph = icosphere_graph()
    with pytest.raises(ValueError, match=r"rank must be in 0..1"):
        build_part(graph, torch.arange(graph.num_nodes) % 2, 2)
    with pytest.raises(ValueError, match="below num_parts=2"):
        build_part(graph, torch.arange(graph.num_nodes) % 3, 0, num_parts=2)
    with pytest.raises(ValueError, match="give num_parts"):
        partition_graph(graph)
