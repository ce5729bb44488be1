import pytest
import torch

from meshgdl.field_type import FieldType
from meshgdl.nn import GemConv
from meshgdl.nn.functional.gem_reference import gem_conv_reference
from meshgdl.testing import assert_gauge_equivariant, assert_permutation_equivariant, assert_rotation_invariant

from ..domains import DOMAINS, domain

TYPES = [
    (FieldType([3]), FieldType([2, 1, 1])),
    (FieldType([2, 2, 1]), FieldType([3, 1, 2, 1])),
    (FieldType([0, 2, 0, 1]), FieldType([2])),
]


def with_bias(conv):
    with torch.no_grad():
        conv.bias.normal_()
    return conv.double()


@pytest.fixture(scope="module", params=DOMAINS)
def dom(request):
    return domain(request.param)


@pytest.mark.parametrize("in_type,out_type", TYPES)
@pytest.mark.parametrize("options", [{}, {"num_radial": 3, "cutoff": 0.5, "use_edge_weight": True, "normalize": False}])
def test_fast_path_matches_per_edge_reference_forward_and_backward(in_type, out_type, options):
    graph, _ = domain("sphere")
    conv = with_bias(GemConv(in_type, out_type, **options))
    x = torch.randn(graph.num_nodes, in_type.dim, dtype=torch.float64, requires_grad=True)
    y, y_ref = conv(x, graph), gem_conv_reference(conv, x, graph)
    assert (y - y_ref).abs().max() <= 1e-10 * y_ref.abs().max()
    g = torch.randn_like(y)
    inputs = [t for t in (x, conv.weight, conv.self_weight, conv.bias) if t.numel()]
    grads = torch.autograd.grad(y, inputs, g)
    grads_ref = torch.autograd.grad(y_ref, inputs, g)
    for a, b in zip(grads, grads_ref):
        assert (a - b).abs().max() <= 1e-10 * b.abs().max()


@pytest.mark.parametrize("in_type,out_type", TYPES[1:2])
def test_gem_conv_is_equivariant_on_every_domain(dom, in_type, out_type):
    graph, build = dom
    conv = with_bias(GemConv(in_type, out_type, num_radial=2, cutoff=graph.edge_logmap.norm(dim=-1).mean().item()))
    x = torch.randn(graph.num_nodes, in_type.dim, dtype=torch.float64)
    assert assert_permutation_equivariant(conv, x, graph) < 1e-10
    assert assert_gauge_equivariant(conv, x, graph, in_type, out_type) < 1e-10
    assert assert_rotation_invariant(conv, x, graph, build=build) < 1e-10


def test_initialisation_keeps_activations_at_unit_scale():
    graph, _ = domain("sphere")
    torch.manual_seed(0)
    x = torch.randn(graph.num_nodes, FieldType.uniform(16, 2).dim, dtype=torch.float64)
    with torch.no_grad():
        for _ in range(4):
            x = GemConv(FieldType.uniform(16, 2), FieldType.uniform(16, 2)).double()(x, graph)
            assert 0.7 < float(x.std()) < 1.5


def test_bias_sits_on_scalar_channels_only():
    conv = GemConv(FieldType([1, 1]), FieldType([2, 3]))
    assert conv.bias.shape == (2,)
    assert GemConv(FieldType([1]), FieldType([0, 2])).bias.shape == (0,)


def test_repr():
    assert repr(GemConv(FieldType([2, 1]), FieldType([1, 1]))) == "GemConv(FieldType([2, 1]), FieldType([1, 1]))"
    conv = GemConv(FieldType([2]), FieldType([1]), num_radial=3, cutoff=1.0)
    assert repr(conv) == "GemConv(FieldType([2]), FieldType([1]), num_radial=3, cutoff=1.0)"


def test_float32(dtype):
    graph, _ = domain("torus")
    for key in ("pos", "frame", "edge_logmap", "edge_transport", "edge_weight"):
        graph[key] = graph[key].to(dtype)
    conv = GemConv(FieldType([2, 1]), FieldType([1, 1])).to(dtype)
    y = conv(torch.randn(graph.num_nodes, 4, dtype=dtype), graph)
    assert y.dtype == dtype and y.shape == (graph.num_nodes, 3) and bool(torch.isfinite(y).all())


def test_compiles_without_graph_breaks():
    graph, _ = domain("torus")
    conv = with_bias(GemConv(FieldType([2, 1, 1]), FieldType([1, 2]), num_radial=2, cutoff=0.5))
    x = torch.randn(graph.num_nodes, 6, dtype=torch.float64, requires_grad=True)
    compiled = torch.compile(conv, fullgraph=True, backend="aot_eager")
    y = compiled(x, graph)
    assert torch.allclose(y, conv(x, graph), atol=1e-12)
    (gx,) = torch.autograd.grad(y.square().sum(), x)
    (gx_ref,) = torch.autograd.grad(conv(x, graph).square().sum(), x)
    assert torch.allclose(gx, gx_ref, atol=1e-12)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="cutoff"):
        GemConv(FieldType([1]), FieldType([1]), num_radial=3)
    with pytest.raises(TypeError, match="FieldType"):
        GemConv(4, FieldType([1]))
    graph, _ = domain("torus")
    del graph.edge_weight
    conv = GemConv(FieldType([1]), FieldType([1]), use_edge_weight=True).double()
    with pytest.raises(ValueError, match="edge_weight"):
        conv(torch.randn(graph.num_nodes, 1, dtype=torch.float64), graph)


def test_radial_profiles_tell_near_from_far_neighbours():
    # Two rings at once: a 12-nearest-neighbour cloud. Stretching the log maps (same directions)
    # changes the output only when the kernel has a radial profile.
    from ..domains import point_cloud_graph

    graph = point_cloud_graph(torch.randn(80, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64), k=12)
    stretched = graph.clone()
    stretched.edge_logmap = graph.edge_logmap * 1.5
    x = torch.randn(graph.num_nodes, 3, dtype=torch.float64)
    plain = GemConv(FieldType([1, 1]), FieldType([1, 1])).double()
    radial = GemConv(FieldType([1, 1]), FieldType([1, 1]), num_radial=4, cutoff=2.0).double()
    assert torch.allclose(plain(x, graph), plain(x, stretched), atol=1e-14)
    assert not torch.allclose(radial(x, graph), radial(x, stretched), atol=1e-3)
    assert assert_gauge_equivariant(radial, x, graph, FieldType([1, 1]), FieldType([1, 1])) < 1e-10
