import pytest
import torch
from torch_geometric.data import Batch

from meshgdl import gauge_transform, groups, observables as obs, permute_nodes
from meshgdl.geometry import lattice_graph, lattice_links, path_product
from meshgdl.nn import LatticeActivation, LatticeBilinear, LatticeConv, TraceReadout, WilsonLoopInput
from meshgdl.testing import assert_lattice_gauge_equivariant, assert_lattice_translation_equivariant


def _setup(shape=(4, 3), group="SU2", channels=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    graph = lattice_graph(shape, group=group, links="random", generator=gen)
    n = graph.link.shape[-1]
    x = torch.randn(graph.num_nodes, channels, n, n, dtype=torch.complex128, generator=gen)
    return graph, x


class _Conv(torch.nn.Module):
    """Adapter so that every layer is called as module(x, graph)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x, graph):
        return self.layer(x)


LAYERS = {
    "conv": lambda d: LatticeConv(3, 4, kernel_size=2, dim=d),
    "bilinear": lambda d: _Conv(LatticeBilinear(3, 3, 2)),
    "activation": lambda d: _Conv(LatticeActivation()),
    "activation_learned": lambda d: _Conv(LatticeActivation(3, activation=torch.tanh)),
    "readout": lambda d: _Conv(TraceReadout(3, 5)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("group,shape", [("U1", (5, 4)), ("SU2", (4, 3)), ("SU3", (3, 4, 3))])
def test_layers_are_gauge_and_translation_equivariant(name, group, shape):
    torch.manual_seed(0)
    graph, x = _setup(shape, group)
    layer = LAYERS[name](len(shape)).double()
    with torch.no_grad():
        for p in layer.parameters():  # move learned scales and shifts away from their initial values
            p.add_(0.3 * torch.randn_like(p))
    assert assert_lattice_gauge_equivariant(layer, graph, x) < 1e-10
    assert assert_lattice_translation_equivariant(layer, graph, x) < 1e-10
    # a periodic shift is a node permutation of the same graph
    perm = torch.randperm(graph.num_nodes)
    y = layer(x, graph)
    assert torch.allclose(layer(x[perm], permute_nodes(graph, perm)), y[perm], atol=1e-12)


def test_wilson_loop_input_is_covariant_and_matches_the_observables():
    graph, _ = _setup((5, 4, 3), "SU3")
    layer = WilsonLoopInput(((1, 1), (2, 1)), dim=3, conjugate=True)
    assert_lattice_gauge_equivariant(layer, graph)
    assert_lattice_translation_equivariant(layer, graph)
    y = layer(graph)
    assert y.shape == (60, 2 * (3 + 6), 3, 3) and layer.out_channels == 18
    u = lattice_links(graph).view(5, 4, 3, 3, 3, 3)
    want = obs.wilson_loops(u, (2, 1), 0, 2).reshape(60, 3, 3)  # size (2, 1), plane (0, 2): channel 3 + 2
    assert torch.allclose(y[:, 5], want, atol=1e-12)
    assert torch.allclose(y[:, 9], obs.wilson_loops(u, 1, 0, 1).reshape(60, 3, 3).mH, atol=1e-12)


def test_conv_transport_against_the_path_product():
    graph, x = _setup((5, 4), "SU2", channels=1)
    conv = LatticeConv(1, 1, kernel_size=3).double()
    paths = conv.transported(x, graph)  # [N, 1 + 4 * 3, 1, 2, 2]
    site = torch.arange(20).view(5, 4)
    for k, s in [(0, 1), (1, 3), (2, 2), (3, 3)]:
        p = path_product(graph, [k] * s)
        step = [(s, 0), (0, s), (-s, 0), (0, -s)][k]
        source = site.roll((-step[0], -step[1]), (0, 1)).flatten()
        want = p @ x[source, 0] @ p.mH
        assert torch.allclose(paths[:, 1 + k * 3 + s - 1, 0], want, atol=1e-12)


def test_conv_on_a_batch_equals_the_conv_on_each_lattice():
    a, xa = _setup((4, 3), "SU2", seed=1)
    b, xb = _setup((3, 5), "SU2", seed=2)
    conv = LatticeConv(3, 2, kernel_size=2).double()
    batch = Batch.from_data_list([a, b])
    y = conv(torch.cat([xa, xb]), batch)
    assert torch.allclose(y, torch.cat([conv(xa, a), conv(xb, b)]), atol=1e-13)


def test_bilinear_formula_and_readout_values():
    graph, x = _setup((3, 3), "SU2", channels=2)
    layer = LatticeBilinear(2, 2, 1, augment=False).double()
    w = torch.view_as_complex(layer.weight)[0]
    want = sum(w[a, b] * x[:, a] @ x[:, b] for a in range(2) for b in range(2))
    assert torch.allclose(layer(x)[:, 0], want, atol=1e-13)
    readout = TraceReadout(2)
    s = readout(x)
    assert torch.allclose(s[:, 1], torch.diagonal(x[:, 1], dim1=-2, dim2=-1).sum(-1).real / 2)
    assert torch.allclose(s[:, 3], torch.diagonal(x[:, 1], dim1=-2, dim2=-1).sum(-1).imag / 2)
    act = LatticeActivation()
    gate = torch.relu(torch.diagonal(x, dim1=-2, dim2=-1).sum(-1).real / 2)
    assert torch.allclose(act(x), gate[..., None, None] * x)


def test_float32_runs():
    graph = lattice_graph((4, 4), group="SU2", links="random", dtype=torch.complex64)
    x = WilsonLoopInput()(graph)
    y = TraceReadout(4, 1)(LatticeBilinear(4, 1, 4)(LatticeConv(1, 4)(x, graph), x))
    assert y.dtype == torch.float32 and y.shape == (16, 1)


def test_bad_input():
    graph, x = _setup((4, 3), "SU2")
    with pytest.raises(ValueError, match="built for 2 input channels, got 3"):
        LatticeConv(2, 4)(x, graph)
    with pytest.raises(ValueError, match="dim=3"):
        LatticeConv(3, 4, dim=3)(x, graph)
    with pytest.raises(ValueError, match=r"complex matrix features \[N, C, n, n\]"):
        LatticeConv(3, 4)(x.real, graph)
    with pytest.raises(ValueError, match="larger than the lattice"):
        WilsonLoopInput(((4, 4),))(graph)
    with pytest.raises(ValueError, match="channels"):
        LatticeActivation(2)(x)
    with pytest.raises(TypeError, match="double precision"):
        assert_lattice_gauge_equivariant(LatticeActivation(), graph, x.to(torch.complex64))
    # a layer that breaks gauge symmetry is caught
    with pytest.raises(AssertionError, match="not lattice gauge equivariant"):
        assert_lattice_gauge_equivariant(lambda x, g: x[lattice_steps_neighbour(g)], graph, x)
    with pytest.raises(AssertionError, match="not translation equivariant"):
        assert_lattice_translation_equivariant(lambda x, g: x * g.pos[:, :1, None, None], graph, x)


def lattice_steps_neighbour(graph):
    from meshgdl.geometry import lattice_steps

    return lattice_steps(graph)[0][0]  # moves features without transporting them


def test_repr():
    assert repr(LatticeConv(3, 4, kernel_size=2)) == "LatticeConv(3, 4, kernel_size=2, dim=2, bias=True)"
    assert repr(LatticeBilinear(2, 3, 4)) == "LatticeBilinear(2, 3, 4, augment=True)"
    assert repr(LatticeActivation()) == "LatticeActivation(channels=None, activation=relu)"
    assert repr(TraceReadout(3, 1)).startswith("TraceReadout(\n  3, 1")
    assert repr(WilsonLoopInput()) == "WilsonLoopInput(sizes=((1, 1),), dim=2, conjugate=False)"
