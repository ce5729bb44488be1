import math

import pytest
import torch
from torch_geometric.data import Batch

from meshgdl.field_type import FieldType
from meshgdl.nn import GemConv, GlobalInvariantPool, TransportPool, coarsen
from meshgdl.testing import assert_gauge_equivariant, assert_permutation_equivariant, assert_rotation_invariant

from ..domains import DOMAINS, check_all, domain, randomize_biases

TYPE = FieldType([2, 1, 1])


class PoolConvUnpool(torch.nn.Module):
    """fine -> pool to centres -> GemConv on the coarse graph -> unpool -> GemConv on the fine graph."""

    def __init__(self, centres=None, cluster=None):
        super().__init__()
        self.centres, self.cluster = centres, cluster
        self.pool, self.unpool = TransportPool(TYPE), TransportPool(TYPE)
        self.coarse_conv, self.fine_conv = GemConv(TYPE, TYPE), GemConv(TYPE, FieldType([1, 1]))

    def forward(self, x, graph):
        c = coarsen(graph, 0.3, centres=self.centres, cluster=self.cluster)
        h = self.coarse_conv(self.pool(x, c.pool)[c.centres], c.coarse)
        up = self.unpool(h.new_zeros(x.shape[0], h.shape[1]).index_copy(0, c.centres, h), c.unpool)
        return self.fine_conv(up, graph)


@pytest.mark.parametrize("name", DOMAINS)
def test_pool_conv_unpool_is_gauge_equivariant_and_rotation_invariant(name):
    graph, build = domain(name)
    c = coarsen(graph, 0.3)          # fixed, so symmetric domains have no ties to break
    net = randomize_biases(PoolConvUnpool(c.centres, c.cluster))
    x = torch.randn(graph.num_nodes, TYPE.dim, dtype=torch.float64)
    assert assert_gauge_equivariant(net, x, graph, TYPE, FieldType([1, 1])) < 1e-10
    assert assert_rotation_invariant(net, x, graph, build=build) < 1e-10


@pytest.mark.parametrize("name", ["mesh", "points"])
def test_coarsening_inside_the_model_is_permutation_and_rotation_equivariant(name):
    # Farthest point sampling depends only on positions; on these generic domains there are no ties.
    graph, build = domain(name)
    net = randomize_biases(PoolConvUnpool())
    x = torch.randn(graph.num_nodes, TYPE.dim, dtype=torch.float64)
    errors = check_all(net, x, graph, build, TYPE, FieldType([1, 1]))
    assert max(errors.values()) < 1e-10


@pytest.mark.parametrize("name", DOMAINS)
def test_transport_pool_on_its_pooling_graph(name):
    graph, build = domain(name)
    c = coarsen(graph, 0.25)
    x = torch.randn(graph.num_nodes, TYPE.dim, dtype=torch.float64)
    for side in ("pool", "unpool"):
        g = getattr(c, side)
        rebuild = lambda pos: getattr(coarsen(build(pos), 0.25, centres=c.centres, cluster=c.cluster), side)  # noqa: E731
        assert assert_permutation_equivariant(TransportPool(TYPE), x, g) < 1e-12
        assert assert_gauge_equivariant(TransportPool(TYPE), x, g, TYPE, TYPE) < 1e-12
        assert assert_rotation_invariant(TransportPool(TYPE), x, g, build=rebuild) < 1e-10


def test_coarsening_structure():
    graph, _ = domain("mesh")
    c = coarsen(graph, 0.25)
    assert len(c.centres) == math.ceil(0.25 * graph.num_nodes) and len(set(c.centres.tolist())) == len(c.centres)
    assert torch.equal(c.pool.edge_index[1], c.centres[c.cluster])
    assert torch.equal(c.cluster[c.centres], torch.arange(len(c.centres)))
    # clusters grow along the surface: each is one connected piece of the fine graph
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    j, i = graph.edge_index
    same = (c.cluster[j] == c.cluster[i]).numpy()
    adj = coo_matrix((same.astype(float), (j.numpy(), i.numpy())), shape=(graph.num_nodes,) * 2)
    adj.eliminate_zeros()
    assert connected_components(adj, directed=False)[0] == len(c.centres)
    assert torch.allclose(c.unpool.edge_transport, -c.pool.edge_transport, atol=1e-12)
    # a node next to its centre is transported along that one fine edge
    src, dst = c.pool.edge_index
    fine = {(a, b): e for e, (a, b) in enumerate(graph.edge_index.T.tolist())}
    adjacent = [(v, fine[(a, b)]) for v, (a, b) in enumerate(zip(src.tolist(), dst.tolist())) if (a, b) in fine]
    assert len(adjacent) > 50
    for v, e in adjacent:
        assert torch.isclose(torch.cos(c.pool.edge_transport[v]), torch.cos(graph.edge_transport[e]), atol=1e-14)
    c.coarse.validate()
    # pooling a constant scalar gives the constant; unpooling then copies it everywhere
    ones = torch.ones(graph.num_nodes, 1, dtype=torch.float64)
    pooled = TransportPool(FieldType([1]))(ones, c.pool)
    assert torch.allclose(pooled[c.centres], torch.ones(len(c.centres), 1, dtype=torch.float64))
    assert torch.allclose(TransportPool(FieldType([1]))(pooled, c.unpool), ones)
    with pytest.raises(ValueError, match="ratio"):
        coarsen(graph, 0.0)


@pytest.mark.parametrize("reduce,field", [("mean", TYPE), ("sum", TYPE), ("max", FieldType([3]))])
def test_a_batch_pools_as_each_sample_alone(reduce, field):
    graph, _ = domain("mesh")
    c = coarsen(graph, 0.25)
    pool = TransportPool(field, reduce=reduce)
    x = torch.randn(3, graph.num_nodes, field.dim, dtype=torch.float64)
    for g in (c.pool, c.unpool):
        alone = torch.stack([pool(sample, g) for sample in x])
        assert torch.allclose(pool(x, g), alone, atol=1e-14)


def test_pooling_a_flat_constant_vector_field_keeps_it():
    graph, _ = domain("grid")           # flat, all frames equal: transports are zero
    c = coarsen(graph, 0.2)
    v = torch.tensor([[0.3, -1.2]], dtype=torch.float64).expand(graph.num_nodes, 2)
    pooled = TransportPool(FieldType([0, 1]))(v, c.pool)[c.centres]
    assert torch.allclose(pooled, v[: len(c.centres)], atol=1e-14)


@pytest.mark.parametrize("name", DOMAINS)
def test_global_invariant_pool(name):
    graph, build = domain(name)
    pool = GlobalInvariantPool(TYPE)
    x = torch.randn(graph.num_nodes, TYPE.dim, dtype=torch.float64)
    errors = check_all(pool, x, graph, build, TYPE)
    assert max(errors.values()) < 1e-12
    out = pool(x, graph)
    assert out.shape == (1, 4)
    assert torch.allclose(out[0, 2], x[:, 2:4].norm(dim=-1).mean())


def test_global_invariant_pool_on_a_batch():
    graphs = [domain("torus")[0], domain("sphere")[0]]
    xs = [torch.randn(g.num_nodes, TYPE.dim, dtype=torch.float64) for g in graphs]
    batch = Batch.from_data_list(graphs)
    for reduce in ("mean", "sum", "max"):
        pool = GlobalInvariantPool(TYPE, reduce=reduce)
        out = pool(torch.cat(xs), batch)
        assert torch.allclose(out, torch.cat([pool(x, g) for x, g in zip(xs, graphs)]), atol=1e-12)
    with pytest.raises(ValueError, match="reduce"):
        GlobalInvariantPool(TYPE, reduce="median")


def test_coarsening_a_graph_with_one_way_edges_matches_the_two_way_graph():
    """kNN graphs hold some pairs in one direction only: the transport to a centre must then run
    against the reverse edge, whichever direction each pair happens to have."""
    from meshgdl.nn.pool.coarsen import transport_to_centre

    graph, _ = domain("sphere")
    first = graph.edge_index[0] < graph.edge_index[1]
    coin = torch.rand(graph.num_edges, generator=torch.Generator().manual_seed(0)) < 0.5
    keep = torch.where(first, coin, ~coin[graph.edge_reverse])  # one direction of each pair, at random
    one_way = graph.clone()
    for key in ("edge_index", "edge_logmap", "edge_transport"):
        one_way[key] = graph[key][..., keep] if key == "edge_index" else graph[key][keep]
    del one_way.edge_reverse, one_way.edge_weight
    c = coarsen(graph, 0.3)
    expected = transport_to_centre(graph, c.centres, c.cluster)
    got = transport_to_centre(one_way, c.centres, c.cluster)
    assert torch.allclose(torch.remainder(got - expected + math.pi, 2 * math.pi) - math.pi,
                          torch.zeros_like(got), atol=1e-12)
