"""Every layer family runs under ``torch.compile(fullgraph=True)``, forward and backward.

``fullgraph=True`` turns any graph break into an error. The ``aot_eager`` backend traces forward
and backward like inductor does, without inductor's long code generation on two cores.
"""
import pytest
import torch

from meshgdl import FieldType
from meshgdl.nn import GaugeLayerNorm, GemConv, IsoConv, NormNonlinearity, RegularNonlinearity
from meshgdl.nn.models import GemResNet

from .domains import domain, randomize_biases

F64 = torch.float64


def check_compiles(module, x, graph):
    torch._dynamo.reset()
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    xx = x.clone().requires_grad_(True)
    y = compiled(xx, graph)
    (gx,) = torch.autograd.grad(y.square().sum(), xx)
    x2 = x.clone().requires_grad_(True)
    y2 = module(x2, graph)
    (gx2,) = torch.autograd.grad(y2.square().sum(), x2)
    assert torch.allclose(y, y2, atol=1e-10) and torch.allclose(gx, gx2, atol=1e-10)


class _Pointwise(torch.nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x, graph):
        return self.layer(x)


@pytest.mark.parametrize("name", ["gem_resnet", "iso", "regular", "norm", "layer_norm"])
def test_layers_compile_without_graph_breaks(name):
    graph, _ = domain("sphere")
    ft = FieldType([2, 1, 1])
    module = {
        "gem_resnet": lambda: GemResNet(3, 2, hidden_type=ft, num_blocks=1),
        "iso": lambda: IsoConv(ft.dim, 3, num_radial=2, cutoff=0.5),
        "regular": lambda: _Pointwise(RegularNonlinearity(FieldType([1, 1, 1]), torch.relu, num_samples=8)),
        "norm": lambda: _Pointwise(NormNonlinearity(ft)),
        "layer_norm": lambda: _Pointwise(GaugeLayerNorm(ft)),
    }[name]().double().eval()
    randomize_biases(module)
    channels = {"gem_resnet": 3, "regular": 5}.get(name, ft.dim)
    check_compiles(module, torch.randn(graph.num_nodes, channels, dtype=F64), graph)



def test_lcnn_compiles_without_graph_breaks():
    from meshgdl.geometry import lattice_graph
    from meshgdl.nn.models import LCNN

    graph = lattice_graph((4, 4), group="SU2", links="random", generator=torch.Generator().manual_seed(0))
    model = LCNN(channels=(2, 2), kernel_size=2, loop_sizes=((1, 1), (1, 2))).double()
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    y = compiled(graph)
    assert torch.allclose(y, model(graph), atol=1e-10)
    y.square().sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(graph).square().sum().backward()
    assert all(torch.allclose(a, p.grad, atol=1e-10) for a, p in zip(grads, model.parameters()))


FUSED = {
    "gem_mixed": lambda: GemConv(FieldType([2, 1, 1]), FieldType([1, 2])),
    "gem_radial_weights": lambda: GemConv(FieldType([1, 2]), FieldType([2, 1, 1]), num_radial=2, cutoff=0.5,
                                          use_edge_weight=True, normalize=False),
    "iso": lambda: IsoConv(4, 3, num_radial=2, cutoff=0.5, use_edge_weight=True),
    "gem_resnet": lambda: GemResNet(4, 2, hidden_type=FieldType([2, 1, 1]), num_blocks=1, num_radial=2, cutoff=0.5),
}


# GemResNet's batch norm takes [N, C] only; the convolutions also take [B, N, C] over one graph
CASES = [(name, False) for name in FUSED] + [(name, True) for name in FUSED if name != "gem_resnet"]


@pytest.mark.parametrize("name, batched", CASES, ids=[f"{n}-{'B_N_C' if b else 'N_C'}" for n, b in CASES])
def test_fused_path_compiles_as_one_graph(name, batched, monkeypatch):
    """The compiled layer runs the fused sparse products (never message passing), shares the eager
    layer's cached operators, and equals the eager fused layer, forward and backward, input and
    weight gradients."""
    from meshgdl import ops
    from meshgdl.nn import GaugeMessagePassing

    graph, _ = domain("torus")
    module = randomize_biases(FUSED[name]().double().eval())
    width = 4 if name in ("iso", "gem_resnet") else module.in_type.dim
    x = torch.randn(*((2,) if batched else ()), graph.num_nodes, width, dtype=F64)
    passes = []
    real = GaugeMessagePassing.gauge_propagate
    monkeypatch.setattr(GaugeMessagePassing, "gauge_propagate", lambda *a, **k: passes.append(1) or real(*a, **k))
    builds, build = [], ops.SparseOperator.from_runs  # what edge_operator and pair_operator build with
    monkeypatch.setattr(ops.SparseOperator, "from_runs", lambda *a, **k: builds.append(1) or build(*a, **k))
    torch._dynamo.reset()
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    results = []
    for run in (compiled, module):
        module.zero_grad()
        xx = x.clone().requires_grad_(True)
        y = run(xx, graph)
        y.square().sum().backward()
        results.append((y.detach(), xx.grad, [p.grad.clone() for p in module.parameters()]))
        built = built if run is module else len(builds)
    compiled(x, graph).sum().backward()
    (y, gx, gw), (y2, gx2, gw2) = results
    assert not passes
    assert 0 < built == len(builds)  # built once, by the first compiled call, then reused
    assert torch.allclose(y, y2, atol=1e-10) and torch.allclose(gx, gx2, atol=1e-10)
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(gw, gw2))


def _has_c_compiler() -> bool:
    import os
    import shutil

    return any(shutil.which(c) for c in (os.environ.get("CXX", ""), "c++", "g++", "clang++") if c)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gem_mixed", "iso"])
def test_fused_path_compiles_with_inductor(name):
    """The default backend (inductor, which generates and compiles C++ on CPU) runs the fused layer in one
    graph and matches eager float32 to rounding, forward and backward: the custom sparse operators stay
    opaque and the dense weight products around them are what inductor fuses."""
    if not _has_c_compiler():
        pytest.skip("torch.compile's inductor backend needs a C++ compiler on CPU; none found")
    graph, _ = domain("torus")
    module = randomize_biases(FUSED[name]().float())
    x = torch.randn(graph.num_nodes, 4 if name == "iso" else module.in_type.dim)
    torch._dynamo.reset()
    compiled = torch.compile(module, fullgraph=True)
    results = []
    for run in (compiled, module):
        module.zero_grad()
        xx = x.clone().requires_grad_(True)
        y = run(xx, graph)
        (y * torch.cos(y)).sum().backward()
        results.append([y.detach(), xx.grad] + [p.grad.clone() for p in module.parameters()])
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5), float((a - b).abs().max())


def test_compiled_backward_reuses_the_cached_operators(monkeypatch):
    """A compiled backward may receive the saved edge tensors as new aliases of the same memory; the
    cache still finds their operators, so a training step builds no geometry after the first."""
    from meshgdl import ops
    from meshgdl.geometry import healpix_graph

    graph = healpix_graph(2, nest=True)
    module = GemConv(FieldType([2, 1]), FieldType([2, 1])).double()
    builds, build = [], ops.SparseOperator.from_runs  # what edge_operator and pair_operator build with
    monkeypatch.setattr(ops.SparseOperator, "from_runs", lambda *a, **k: builds.append(1) or build(*a, **k))
    torch._dynamo.reset()
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    for _ in range(3):
        compiled(torch.randn(graph.num_nodes, 4, dtype=F64, requires_grad=True), graph).square().sum().backward()
    assert len(builds) == 2  # one operator an input frequency, built by the first step only
