import math

import pytest
import torch
from torch_geometric.data import Batch

from meshgdl import gauge_transform, groups, observables as obs
from meshgdl.geometry import lattice_graph, lattice_links, loop_holonomy


def _field(shape, group, seed=0):
    g = torch.Generator().manual_seed(seed)
    return groups.random_element(group, (*shape, len(shape)), generator=g)


def _rectangle(shape, a, b, mu, nu):
    """Node sequences of the a x b loops at every site, for loop_holonomy."""
    site = torch.arange(math.prod(shape)).view(shape)
    path, offset = [], [0] * len(shape)
    for m, steps, sign in ((mu, a, 1), (nu, b, 1), (mu, a, -1), (nu, b, -1)):
        for _ in range(steps):
            path.append(site.roll([-o for o in offset], list(range(len(shape)))).flatten())
            offset[m] += sign
    return torch.stack(path, 1)


@pytest.mark.parametrize("group,shape,size,plane", [
    ("SU2", (5, 4), (2, 3), (0, 1)),
    ("SU3", (3, 4, 5), (1, 2), (2, 0)),
    ("U1", (6, 5), (3, 3), (1, 0)),
])
def test_three_paths_agree(group, shape, size, plane):
    u = _field(shape, group)
    g = lattice_graph(shape, group=group, links=u)
    fast = obs.wilson_loops(u, size, *plane)
    graph = obs.wilson_loops(g, size, *plane)
    slow = loop_holonomy(g, _rectangle(shape, *size, *plane))
    n = u.shape[-1]
    assert torch.allclose(fast.reshape(-1, n, n), graph, atol=1e-12)
    assert torch.allclose(graph, slow, atol=1e-12)


def test_traced_loops_are_gauge_invariant():
    shape = (4, 5, 3)
    g = lattice_graph(shape, group="SU3", links="random", generator=torch.Generator().manual_seed(1))
    w = groups.random_element("SU3", (g.num_nodes,), generator=torch.Generator().manual_seed(2))
    h = gauge_transform(g, w)
    for size in [(1, 1), (2, 1), (2, 3)]:
        a, b = obs.traced_wilson_loops(g, size), obs.traced_wilson_loops(h, size)
        assert float((a - b).abs().max()) < 1e-12
        # and not trivially so: the matrices themselves do change
        assert float((obs.wilson_loops(g, size) - obs.wilson_loops(h, size)).abs().max()) > 1e-2
    u, v = lattice_links(g).view(*shape, 3, 3, 3), lattice_links(h).view(*shape, 3, 3, 3)
    assert float((obs.polyakov_loops(u) - obs.polyakov_loops(v)).abs().max()) < 1e-12
    assert float((obs.polyakov_loops(g) - obs.polyakov_loops(h)).abs().max()) < 1e-12
    assert float((obs.mean_plaquette(u) - obs.mean_plaquette(v)).abs()) < 1e-12


def test_known_values():
    # identity links: every loop is 1
    u = groups.identity("SU2", (4, 4, 2))
    assert torch.allclose(obs.traced_wilson_loops(u, (2, 3)), torch.ones(4, 4, dtype=torch.float64))
    # U(1) with a constant field strength B = 2 pi k / L^2 on an L x L torus: U_{x,1} = exp(i B x_0),
    # and a twist U_{x,0} = exp(-i B L x_1) across the seam x_0 = L - 1; every plaquette is exp(i B)
    L, k = 6, 2
    B = 2 * math.pi * k / L**2
    x = torch.arange(L, dtype=torch.float64)
    theta = torch.zeros(L, L, 2, dtype=torch.float64)
    theta[..., 1] = B * x[:, None]
    theta[L - 1, :, 0] = -B * L * x
    u = torch.polar(torch.ones_like(theta), theta)[..., None, None]
    assert torch.allclose(obs.topological_charge(u), torch.tensor(float(k), dtype=torch.float64), atol=1e-12)
    p = obs.wilson_loops(u, 1)[..., 0, 0]
    assert torch.allclose(p, torch.polar(torch.ones(L, L, dtype=torch.float64), torch.full((L, L), B, dtype=torch.float64)), atol=1e-12)
    assert torch.allclose(obs.mean_plaquette(u), torch.tensor(math.cos(B), dtype=torch.float64), atol=1e-14)
    # a 2 x 3 loop of an abelian field is the product of its six plaquettes
    u = _field((5, 6), "U1", seed=3)
    p = obs.wilson_loops(u, 1)
    prod = torch.ones_like(p)
    for s in range(2):
        for t in range(3):
            prod = prod * p.roll((-s, -t), (0, 1))
    assert torch.allclose(obs.wilson_loops(u, (2, 3)), prod, atol=1e-12)
    # Polyakov loop of an abelian field: the sum of the phases along the line
    line = torch.angle(u[..., 1, 0, 0]).sum(1)
    assert torch.allclose(obs.polyakov_loops(u, 1), torch.polar(torch.ones_like(line), line).to(u.dtype), atol=1e-12)


def test_batches_and_graph_reductions():
    a = lattice_graph((4, 4), group="U1", links="random", generator=torch.Generator().manual_seed(4))
    b = lattice_graph((4, 4), group="U1", links="random", generator=torch.Generator().manual_seed(5))
    batch = Batch.from_data_list([a, b])
    want = torch.stack([obs.mean_plaquette(lattice_links(x).view(4, 4, 2, 1, 1)) for x in (a, b)])
    assert torch.allclose(obs.mean_plaquette(batch), want, atol=1e-14)
    q = obs.topological_charge(batch)
    assert torch.allclose(q, q.round(), atol=1e-10)
    assert torch.allclose(q, torch.stack([obs.topological_charge(x) for x in (a, b)]), atol=1e-12)
    s = obs.wilson_action(batch, 2.0)
    assert torch.allclose(s, 2.0 * 16 * (1 - want), atol=1e-12)
    assert torch.allclose(obs.wilson_action(lattice_links(a).view(4, 4, 2, 1, 1), 2.0), s[0], atol=1e-12)


def test_bad_input():
    u = _field((4, 3), "SU2")
    g = lattice_graph((4, 3), group="SU2", links=u)
    with pytest.raises(ValueError, match=r"larger than the lattice of shape \(4, 3\)"):
        obs.wilson_loops(u, (2, 4))
    with pytest.raises(ValueError, match="larger than the lattice"):
        obs.traced_wilson_loops(g, (5, 1))
    with pytest.raises(ValueError, match="at least 1"):
        obs.wilson_loops(u, (0, 1))
    with pytest.raises(ValueError, match="two different directions"):
        obs.wilson_loops(u, 1, 0, 0)
    with pytest.raises(ValueError, match="2D U"):
        obs.topological_charge(u)
    with pytest.raises(TypeError, match="complex"):
        obs.wilson_loops(u.real)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        obs.plaquettes(_field((5,), "U1"))


def test_tiny_extents_with_parallel_edges_and_self_loops():
    # extent 2 makes parallel edges and extent 1 self-loops; the direction-based paths still agree
    for shape in [(2, 4), (1, 3), (2, 2, 1)]:
        u = _field(shape, "SU2", seed=7)
        g = lattice_graph(shape, group="SU2", links=u)
        for size in [(1, 1), (2, 1)]:
            if size[0] > shape[0]:
                continue
            fast = obs.wilson_loops(u, size).reshape(-1, 2, 2)
            assert torch.allclose(obs.wilson_loops(g, size), fast, atol=1e-12)
        assert torch.allclose(obs.polyakov_loops(g, 0).view(shape)[0], obs.polyakov_loops(u, 0), atol=1e-12)
