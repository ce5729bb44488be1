import math

import pytest
import torch
from torch_geometric.data import Batch

from meshgdl import FramedGraph, gauge_transform, groups
from meshgdl.geometry import lattice_graph, lattice_links, lattice_shape, lattice_steps, loop_holonomy, path_product


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape", [(5,), (4, 3), (3, 4, 5)])
def test_structure(shape):
    d, num = len(shape), math.prod(shape)
    g = lattice_graph(shape, group="SU2", links="random", generator=_gen())
    assert g.num_nodes == num and g.num_edges == 2 * d * num
    assert lattice_shape(g) == shape
    # row-major sites: node id = ravel(pos)
    ids = torch.arange(num).view(shape)[tuple(g.pos.long().t())]
    assert torch.equal(ids, torch.arange(num))
    j, i = g.edge_index
    step = torch.remainder(g.pos[j] - g.pos[i], torch.tensor(shape, dtype=g.pos.dtype))
    for k in range(2 * d):
        mu, sign = k % d, 1 if k < d else -1
        want = torch.zeros(d, dtype=g.pos.dtype)
        want[mu] = sign % shape[mu]
        assert torch.equal(step[g.edge_direction == k], want.expand(num, d))
    # edge_reverse swaps the ends and carries the inverse link
    r = g.edge_reverse
    assert torch.equal(r[r], torch.arange(g.num_edges))
    assert torch.equal(g.edge_index[:, r], g.edge_index.flip(0))
    assert torch.allclose(g.link[r], g.link.conj().transpose(-1, -2), atol=0)


def test_links_follow_the_physics_convention():
    shape = (4, 3)
    u = groups.random_element("SU3", (*shape, 2), generator=_gen(1))
    g = lattice_graph(shape, group="SU3", links=u)
    site = torch.arange(12).view(shape)
    for mu in range(2):
        for x in [(0, 0), (3, 2), (1, 2)]:
            y = list(x)
            y[mu] = (y[mu] + 1) % shape[mu]
            e = g.edge_id(site[tuple(y)].view(1), site[x].view(1))  # source x + mu, target x
            assert torch.equal(g.link[e][0], u[x][mu])
            e = g.edge_id(site[x].view(1), site[tuple(y)].view(1))  # source x, target x + mu
            assert torch.equal(g.link[e][0], u[x][mu].conj().t())
    assert torch.equal(lattice_links(g), u.reshape(12, 2, 3, 3))
    flat = lattice_graph(shape, group="SU3", links=u.reshape(12, 2, 3, 3))
    assert torch.equal(flat.link, g.link)


def test_identity_and_u1_defaults():
    g = lattice_graph((3, 3))
    assert g.link.shape == (36, 1, 1) and g.link.dtype == torch.complex128
    assert torch.equal(g.link, torch.ones_like(g.link))
    assert g.gauge_group == "U1"
    g = lattice_graph((3, 3), group="SU3", dtype=torch.complex64)
    assert g.link.dtype == torch.complex64 and g.pos.dtype == torch.float32


def test_gauge_transform_conventions():
    shape = (3, 4)
    g = lattice_graph(shape, group="SU2", links="random", generator=_gen(2))
    w = groups.random_element("SU2", (12,), generator=_gen(3))
    f = torch.randn(12, 2, 2, dtype=torch.complex128, generator=_gen(4))
    g.x = f[:, None]
    h = gauge_transform(g, w)
    # links: U_ij' = W_i U_ij W_j^dagger, and the reverse edge stays the inverse
    j, i = g.edge_index
    assert torch.allclose(h.link, w[i] @ g.link @ w[j].mH, atol=1e-13)
    assert torch.allclose(h.link[h.edge_reverse], h.link.mH, atol=1e-13)
    # features: F' = W F W^dagger, and transport commutes with the gauge transformation
    assert torch.allclose(h.x[:, 0], w @ f @ w.mH, atol=1e-13)
    moved = g.link @ f[j] @ g.link.mH
    moved_h = h.link @ h.x[j, 0] @ h.link.mH
    assert torch.allclose(moved_h, w[i] @ moved @ w[i].mH, atol=1e-12)
    # the input graph is left as it was
    assert torch.equal(g.x[:, 0], f)


def test_loop_holonomy_agrees_with_path_product_and_is_covariant():
    shape = (3, 4)
    g = lattice_graph(shape, group="SU3", links="random", generator=_gen(5))
    site = torch.arange(12).view(shape)
    x = site.flatten()
    x0 = site.roll(-1, 0).flatten()
    x01 = site.roll((-1, -1), (0, 1)).flatten()
    x1 = site.roll(-1, 1).flatten()
    plaquette = loop_holonomy(g, torch.stack([x, x0, x01, x1], 1))
    assert torch.allclose(plaquette, path_product(g, [0, 1, 2, 3]), atol=1e-13)
    u = lattice_links(g).view(3, 4, 2, 3, 3)
    # U_{x,0} U_{x+0,1} U_{x+1,0}^dagger U_{x,1}^dagger written out at one site
    p = u[1, 2, 0] @ u[2, 2, 1] @ u[1, 3, 0].mH @ u[1, 2, 1].mH
    assert torch.allclose(plaquette[site[1, 2]], p, atol=1e-13)
    w = groups.random_element("SU3", (12,), generator=_gen(6))
    h = gauge_transform(g, w)
    moved = loop_holonomy(h, torch.stack([x, x0, x01, x1], 1))
    assert torch.allclose(moved, w @ plaquette @ w.mH, atol=1e-12)
    tr = lambda m: torch.diagonal(m, dim1=-2, dim2=-1).sum(-1)
    assert float((tr(moved) - tr(plaquette)).abs().max()) < 1e-12


def test_batches_shift_edge_reverse_and_keep_the_links():
    a = lattice_graph((3, 3), group="SU2", links="random", generator=_gen(7))
    b = lattice_graph((4, 3), group="SU2", links="random", generator=_gen(8))
    batch = Batch.from_data_list([a, b])
    r = batch.edge_reverse
    assert torch.equal(r[r], torch.arange(batch.num_edges))
    assert torch.equal(batch.edge_index[:, r], batch.edge_index.flip(0))
    assert torch.equal(lattice_links(batch), torch.cat([lattice_links(a), lattice_links(b)]))
    neighbour, _ = lattice_steps(batch)
    assert torch.equal(neighbour[:, 9:] - 9, lattice_steps(b)[0])
    with pytest.raises(ValueError, match="mixes lattice shapes"):
        lattice_shape(batch)
    assert lattice_shape(Batch.from_data_list([a, a])) == (3, 3)


def test_save_and_load(tmp_path):
    g = lattice_graph((2, 3, 2), group="SU2", links="random", generator=_gen(9))
    h = FramedGraph.load(g.save(tmp_path / "g.pt"))
    assert lattice_shape(h) == (2, 3, 2) and h.gauge_group == "SU2"
    assert torch.equal(h.link, g.link) and torch.equal(h.edge_direction, g.edge_direction)


def test_bad_input():
    with pytest.raises(ValueError, match="positive"):
        lattice_graph((4, 0))
    with pytest.raises(ValueError, match="positive"):
        lattice_graph((-2, 3))
    with pytest.raises(TypeError, match="ints"):
        lattice_graph((4.5, 3))
    with pytest.raises(ValueError, match="at least one dimension"):
        lattice_graph(())
    with pytest.raises(ValueError, match="unknown gauge group"):
        lattice_graph((3, 3), group="O3")
    u = groups.random_element("SU2", (3, 3, 2), generator=_gen(10))
    with pytest.raises(ValueError, match=r"not in SU2 \(max .*project_to_group"):
        lattice_graph((3, 3), group="SU2", links=1.01 * u)
    with pytest.raises(ValueError, match=r"must have shape \[3, 3, 2, 2, 2\] or \[9, 2, 2, 2\]"):
        lattice_graph((3, 3), group="SU2", links=u[:, :2])
    with pytest.raises(ValueError, match="must have shape"):
        lattice_graph((3, 3), group="SU3", links=u)
    with pytest.raises(TypeError, match="complex"):
        lattice_graph((3, 3), group="SU2", links=u.real)
    with pytest.raises(ValueError, match="'random'"):
        lattice_graph((3, 3), links="haar")
    with pytest.raises(ValueError, match="lattice_graph"):
        lattice_steps(FramedGraph(edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=2))
