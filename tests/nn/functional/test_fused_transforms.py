"""torch.func through the fused aggregation: every transform equals the message-passing path."""
import pytest
import torch
from torch.func import grad, hessian, jacrev, jvp, vjp, vmap

from meshgdl import FieldType
from meshgdl.geometry import grid_graph
from meshgdl.nn import GemConv, IsoConv

F64 = torch.float64


@pytest.fixture(scope="module")
def graph():
    g = grid_graph(3, 4, dtype=F64)
    g.edge_weight = torch.rand(g.num_edges, dtype=F64, generator=torch.Generator().manual_seed(5)) + 0.5
    return g


def pair(make):
    """The same layer twice: fused and message passing, with equal weights."""
    torch.manual_seed(0)
    fused, plain = make().double(), make().double()
    plain.load_state_dict(fused.state_dict())
    plain.fused = False
    return fused, plain


LAYERS = {
    # input frequencies 0, 1 and 2 (complex pairs), radial profiles and edge weights
    "gem": lambda: GemConv(FieldType([2, 1, 1]), FieldType([1, 2, 1]), num_radial=2, cutoff=1.5,
                           use_edge_weight=True),
    "iso": lambda: IsoConv(3, 4, num_radial=2, cutoff=1.5),
}


@pytest.mark.parametrize("name", LAYERS)
def test_jvp_equals_message_passing_and_finite_differences(name, graph):
    fused, plain = pair(LAYERS[name])
    c = fused.in_type.dim if name == "gem" else fused.in_channels
    x, dx = torch.randn(12, c, dtype=F64), torch.randn(12, c, dtype=F64)
    y, got = jvp(lambda v: fused(v, graph), (x,), (dx,))
    _, want = jvp(lambda v: plain(v, graph), (x,), (dx,))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
    assert got.norm() > 0.1 * y.norm()
    # affine in x: the central difference is exact up to rounding
    diff = (fused(x + 1e-3 * dx, graph) - fused(x - 1e-3 * dx, graph)) / 2e-3
    torch.testing.assert_close(got, diff, rtol=0, atol=1e-9)
    # forward mode outside torch.func too
    with torch.autograd.forward_ad.dual_level():
        dual = fused(torch.autograd.forward_ad.make_dual(x, dx), graph)
        torch.testing.assert_close(torch.autograd.forward_ad.unpack_dual(dual).tangent, want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", LAYERS)
def test_jacrev_vjp_and_hessian_equal_message_passing(name, graph):
    fused, plain = pair(LAYERS[name])
    c = fused.in_type.dim if name == "gem" else fused.in_channels
    x = torch.randn(12, c, dtype=F64)
    torch.testing.assert_close(jacrev(lambda v: fused(v, graph))(x), jacrev(lambda v: plain(v, graph))(x),
                               rtol=0, atol=1e-10)
    cot = torch.randn_like(fused(x, graph))
    got, want = (vjp(lambda v: layer(v, graph), x)[1](cot)[0] for layer in (fused, plain))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
    # forward over reverse through two layers and a nonlinearity: jvp of the backward's products
    def energy(layer):
        return lambda v: torch.tanh(layer(torch.sin(layer(v, graph)[:, :c]), graph)).square().sum()

    torch.testing.assert_close(hessian(energy(fused))(x), hessian(energy(plain))(x), rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", LAYERS)
def test_vmap_over_inputs_equals_a_loop(name, graph):
    fused, plain = pair(LAYERS[name])
    c = fused.in_type.dim if name == "gem" else fused.in_channels
    xs = torch.randn(5, 12, c, dtype=F64)
    loop = torch.stack([plain(x, graph) for x in xs])
    torch.testing.assert_close(vmap(lambda v: fused(v, graph))(xs), loop, rtol=0, atol=1e-10)
    # batch dimension elsewhere, chunked, and per-sample gradients (grad under vmap)
    torch.testing.assert_close(vmap(lambda v: fused(v, graph), in_dims=1, chunk_size=2)(xs.transpose(0, 1)), loop,
                               rtol=0, atol=1e-10)
    loss = lambda layer: lambda v: torch.cos(layer(v, graph)).sum()  # noqa: E731
    per_sample = [torch.autograd.grad(loss(plain)(x.requires_grad_()), x)[0] for x in xs.clone()]
    torch.testing.assert_close(vmap(grad(loss(fused)))(xs), torch.stack(per_sample), rtol=0, atol=1e-10)


def test_double_backward_is_unchanged(graph):
    fused, plain = pair(LAYERS["gem"])
    x = torch.randn(12, fused.in_type.dim, dtype=F64)
    out = []
    for layer in (fused, plain):
        v = x.clone().requires_grad_()
        (g,) = torch.autograd.grad(torch.sin(layer(v, graph)).sum(), v, create_graph=True)
        (gg,) = torch.autograd.grad(g.square().sum(), v)
        layer.zero_grad()
        layer(v, graph).square().sum().backward()
        out.append((g, gg, layer.weight.grad.clone()))
    for got, want in zip(*out):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
    v = x.clone().requires_grad_()
    assert torch.autograd.gradgradcheck(lambda t: fused(t, graph), (v,))


def test_unsupported_transforms_raise(graph):
    fused, _ = pair(LAYERS["gem"])
    x = torch.randn(12, fused.in_type.dim, dtype=F64)
    # one graph per sample: the operator's geometry is fixed, so vmap over it is refused
    turns = torch.stack([graph.edge_transport, graph.edge_transport + 0.1])

    def moved(t):
        g = graph.clone()
        g.edge_transport = t
        return fused(x, g)

    with pytest.raises(ValueError, match="maps over the features only"):
        vmap(moved)(turns)
    # a gradient with respect to the geometry is not the fused path's to give
    g = graph.clone()
    g.edge_weight = graph.edge_weight.clone().requires_grad_()
    with pytest.raises(RuntimeError, match="fused=False"):
        fused(x, g).sum().backward()
