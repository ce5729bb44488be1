"""What every layer does at its door: bad features are refused by name, graphs without edges or
nodes work, and half precision runs (the fused sparse product in float32)."""
import numpy as np
import pytest
import torch
import trimesh

from meshgdl import FieldType
from meshgdl.geometry import mesh_graph
from meshgdl.graph import FramedGraph
from meshgdl.nn import GaugeBatchNorm, GaugeLayerNorm, GemConv, GlobalInvariantPool, IsoConv, TransportPool
from meshgdl.nn.functional.gem_reference import gem_conv_reference
from meshgdl.nn.models import GemResNet

from .domains import randomize_biases

F64 = torch.float64
TYPE = FieldType([2, 1])


@pytest.fixture(scope="module")
def sphere():
    m = trimesh.creation.icosphere(subdivisions=1)
    return mesh_graph(np.array(m.vertices), np.array(m.faces), dtype=F64)


def without_edges(graph, num_nodes=None):
    """The graph's nodes (the first ``num_nodes``) and no edges: a masked sky whose pixels lost all
    their neighbours, or, with ``num_nodes = 0``, nothing at all."""
    n = graph.num_nodes if num_nodes is None else num_nodes
    empty = graph.edge_index[:, :0]
    return FramedGraph(pos=graph.pos[:n], frame=graph.frame[:n], edge_index=empty, edge_logmap=graph.edge_logmap[:0],
                       edge_transport=graph.edge_transport[:0], edge_weight=graph.edge_weight[:0])


LAYERS = {"gem": lambda: GemConv(TYPE, FieldType([1, 2])), "iso": lambda: IsoConv(4, 3)}


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "message_passing"])
@pytest.mark.parametrize("name", LAYERS)
def test_bad_features_are_refused_with_the_expected_shape(sphere, name, fused):
    layer = LAYERS[name]().double()
    layer.fused = fused
    n, c = sphere.num_nodes, 4
    kind = "GemConv" if name == "gem" else "IsoConv"
    field = r"FieldType\(\[2, 1\]\)" if name == "gem" else r"FieldType\(\[4\]\)"
    with pytest.raises(ValueError, match=rf"{kind} expects features \[{n}, 4\].*{field} has 4 channels.*5 channels where"):
        layer(torch.randn(n, 5, dtype=F64), sphere)
    with pytest.raises(ValueError, match=rf"{n + 3} rows where the graph has {n} nodes"):
        layer(torch.randn(n + 3, c, dtype=F64), sphere)
    with pytest.raises(ValueError, match="a 1-D tensor; pass x\\[:, None\\]"):
        layer(torch.randn(n, dtype=F64), sphere)
    with pytest.raises(TypeError, match="floating-point features, got torch.int64"):
        layer(torch.ones(n, c, dtype=torch.long), sphere)
    if fused:
        with pytest.raises(ValueError, match=r"\[N, B, C\] looks transposed; pass \[B, N, C\]"):
            layer(torch.randn(n, 2, c, dtype=F64), sphere)
        assert layer(torch.randn(2, n, c, dtype=F64), sphere).shape[:2] == (2, n)
    else:
        with pytest.raises(ValueError, match=r"\[B, N, C\] over one shared graph need the fused path \(fused=True\)"):
            layer(torch.randn(2, n, c, dtype=F64), sphere)


def test_norms_and_pools_check_their_features(sphere):
    for layer in (GaugeBatchNorm(TYPE), GaugeLayerNorm(TYPE), GlobalInvariantPool(TYPE), TransportPool(TYPE)):
        with pytest.raises(ValueError, match=rf"{type(layer).__name__} expects features .*5 channels where"):
            layer(torch.randn(sphere.num_nodes, 5), sphere)
        with pytest.raises(ValueError, match="rows where the graph has"):
            layer(torch.randn(3, 4), sphere)


@pytest.mark.parametrize("kwargs", [{}, {"num_radial": 2, "cutoff": 0.5, "use_edge_weight": True, "normalize": False}])
def test_without_edges_only_the_self_term_and_bias_remain(sphere, kwargs):
    torch.manual_seed(0)
    bare = without_edges(sphere)
    for layer in (GemConv(TYPE, FieldType([1, 2]), **kwargs), IsoConv(4, 3, **kwargs)):
        layer = randomize_biases(layer.double())
        x = torch.randn(sphere.num_nodes, 4, dtype=F64)
        outs = []
        for fused in (True, False):
            layer.fused = fused
            xx = x.clone().requires_grad_(True)
            y = layer(xx, bare)
            (g,) = torch.autograd.grad(y.square().sum(), xx)
            outs.append((y, g))
        (a, ga), (b, gb) = outs
        assert torch.allclose(a, b, atol=1e-12) and torch.allclose(ga, gb, atol=1e-12)
        # no neighbours is what zero neighbour weights give on the full graph
        with torch.no_grad():
            layer.weight.zero_()
        assert torch.allclose(a, layer(x, sphere), atol=1e-12)
        if isinstance(layer, GemConv):
            assert torch.allclose(a, gem_conv_reference(layer, x, bare), atol=1e-12)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "message_passing"])
def test_a_graph_without_nodes_gives_empty_outputs(sphere, fused):
    empty = without_edges(sphere, 0)
    for layer, width, out in [(GemConv(TYPE, FieldType([1, 2]), fused=fused), 4, 5), (IsoConv(4, 3, fused=fused), 4, 3),
                              (GemResNet(4, 2, FieldType([2, 1]), num_blocks=1, fused=fused), 4, 2),
                              (GaugeBatchNorm(TYPE), 4, 4), (GaugeLayerNorm(TYPE), 4, 4), (TransportPool(TYPE), 4, 4)]:
        layer = layer.double()
        x = torch.randn(0, width, dtype=F64, requires_grad=True)
        y = layer(x, empty)
        assert y.shape == (0, out)
        y.sum().backward()
        assert x.grad.shape == (0, width)
    bn = GaugeBatchNorm(TYPE).double()
    bn(torch.randn(0, 4, dtype=F64), empty)
    assert torch.equal(bn.running_mean, torch.zeros(2, dtype=F64))  # an empty batch adds no statistics
    for reduce in ("mean", "sum", "max"):
        assert torch.equal(GlobalInvariantPool(TYPE, reduce)(torch.randn(0, 4), empty), torch.zeros(1, 3))
    graph_model = GemResNet(4, 2, FieldType([2, 1]), num_blocks=1, task="graph").double()
    assert torch.isfinite(graph_model(torch.randn(0, 4, dtype=F64), empty)).all()


def relative_error(a, b):
    return float((a.detach().float() - b.detach().float()).norm() / b.detach().float().norm())


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "message_passing"])
@pytest.mark.parametrize("half, tol", [(torch.float16, 3e-3), (torch.bfloat16, 2e-2)], ids=["float16", "bfloat16"])
def test_half_precision_inputs_run_close_to_float32(half, tol, fused):
    m = trimesh.creation.icosphere(subdivisions=1)
    graph = mesh_graph(np.array(m.vertices), np.array(m.faces))
    torch.manual_seed(0)
    for layer in (GemConv(TYPE, FieldType([1, 2]), num_radial=2, cutoff=0.5, fused=fused), IsoConv(4, 3, fused=fused)):
        layer = randomize_biases(layer)
        x = torch.randn(graph.num_nodes, 4)
        ref = layer(x, graph)
        (gref,) = torch.autograd.grad(ref.square().sum(), layer.weight)
        low = layer.to(half)
        xh = x.to(half).requires_grad_(True)
        y = low(xh, graph)
        assert y.dtype == half and relative_error(y, ref) < tol
        (g,) = torch.autograd.grad(y.float().square().sum(), low.weight)
        assert g.dtype == half and relative_error(g, gref) < 4 * tol
        layer.float()


def test_cpu_autocast_runs_close_to_float32():
    m = trimesh.creation.icosphere(subdivisions=1)
    graph = mesh_graph(np.array(m.vertices), np.array(m.faces))
    torch.manual_seed(0)
    model = randomize_biases(GemResNet(3, 2, FieldType([4, 2, 1]), num_blocks=1, num_radial=2, cutoff=0.5)).eval()
    iso = IsoConv(3, 2)
    x = torch.randn(graph.num_nodes, 3)
    for layer in (model, iso):
        ref = layer(x, graph)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = layer(x, graph)
            y.float().square().sum().backward()
        assert relative_error(y, ref) < 3e-2


@pytest.mark.parametrize("pixels", [[0, 47], [0, 5, 10, 15, 20, 47]], ids=["no_edges", "few_edges"])
def test_a_masked_healpix_sky_of_isolated_pixels(pixels):
    """A few nested pixels of nside 2 kept, so most lost every neighbour: the fused layers agree
    with message passing and GemConv with the per-edge reference."""
    from meshgdl.geometry import healpix_graph

    keep = np.zeros(48, dtype=bool)
    keep[pixels] = True
    sky = healpix_graph(2, mask=keep, dtype=F64)
    assert sky.num_nodes == len(pixels) and (sky.num_edges == 0) == (len(pixels) == 2)
    torch.manual_seed(0)
    x = torch.randn(len(pixels), 4, dtype=F64)
    for layer in (GemConv(TYPE, FieldType([1, 2])), IsoConv(4, 3)):
        layer = randomize_biases(layer.double())
        fused = layer(x, sky)
        layer.fused = False
        assert torch.allclose(fused, layer(x, sky), atol=1e-12)
        if isinstance(layer, GemConv):
            assert torch.allclose(fused, gem_conv_reference(layer, x, sky), atol=1e-12)
