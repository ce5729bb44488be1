"""The two empirical NTKs agree with each other and with per-output autograd gradients."""
import copy

import pytest
import torch

from meshgdl import gauge_transform
from meshgdl.geometry import grid_graph, healpix_graph
from meshgdl.nn import FieldType, GemConv, IsoConv
from meshgdl.nn.models import GemResNet
from meshgdl.ntk import NTKGraphNet, NTKMLP, empirical_ntk, empirical_ntk_reference


class GemNet(torch.nn.Module):
    """Scalars -> (scalars, vectors) -> scalars: two GEM convolutions with a gauge-invariant gate."""

    def __init__(self, fused=True):
        super().__init__()
        self.conv1 = GemConv(FieldType.scalars(2), FieldType([2, 1]), fused=fused)
        self.conv2 = GemConv(FieldType([2, 1]), FieldType.scalars(3), fused=fused)

    def forward(self, x, graph):
        h = self.conv1(x, graph)
        return self.conv2(torch.tanh(h[:, :1]) * h, graph)


class IsoNet(torch.nn.Module):
    """Node-level or graph-level (mean over nodes) isotropic network."""

    def __init__(self, readout="node", fused=False):
        super().__init__()
        self.conv1, self.conv2 = IsoConv(2, 4, fused=fused), IsoConv(4, 2, fused=fused)
        self.readout = readout

    def forward(self, x, graph):
        out = self.conv2(torch.relu(self.conv1(x, graph)), graph)
        return out.mean(0) if self.readout == "graph" else out


def _agree(model, x1, x2=None, **kw):
    for trace in (True, False):
        slow = empirical_ntk_reference(model, x1, x2, trace=trace)
        for method in ("jacobian", "ntvp"):
            fast = empirical_ntk(model, x1, x2, method=method, trace=trace, **kw)
            assert fast.shape == slow.shape
            torch.testing.assert_close(fast, slow, rtol=0, atol=1e-10 * slow.abs().max().item())
    return slow


def test_mlp_tensor_inputs_chunked():
    torch.manual_seed(0)
    model = NTKMLP(5, 16, 3, depth=2, bias_std=0.5).double()
    x1, x2 = torch.randn(7, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    full = _agree(model, x1, x2, chunk_size=3, vmap_chunk_size=2)
    assert full.shape == (7, 4, 3, 3)
    # the NTK is a Gram matrix: symmetric and positive semi-definite on one set of inputs
    gram = empirical_ntk(model, x1, method="ntvp", chunk_size=2)
    torch.testing.assert_close(gram, gram.T, rtol=0, atol=1e-12)
    assert torch.linalg.eigvalsh(gram).min() > -1e-10


def test_gem_conv_on_grid_node_level():
    torch.manual_seed(1)
    graph = grid_graph(3, 4, dtype=torch.float64)
    model = GemNet(fused=False).double()
    x = torch.randn(12, 2, dtype=torch.float64)
    theta = _agree(model, (x, graph))
    assert theta.shape == (12, 12, 3, 3)
    # a gauge-equivariant model with scalar inputs and outputs has a gauge-invariant NTK
    moved = gauge_transform(graph, torch.rand(12, dtype=torch.float64) * 6.28)
    torch.testing.assert_close(empirical_ntk(model, (x, moved), trace=False), theta, rtol=0,
                               atol=1e-10 * theta.abs().max().item())


def _unfused(model):
    """A copy of ``model`` whose GemConv and IsoConv layers run message passing."""
    plain = copy.deepcopy(model)
    for layer in plain.modules():
        if isinstance(layer, (GemConv, IsoConv)):
            layer.fused = False
    return plain


@pytest.mark.parametrize("make", [lambda: GemNet(fused=True), lambda: IsoNet("node", fused=True),
                                  lambda: GemResNet(2, 2, FieldType([2, 1]), num_blocks=1, num_radial=2, cutoff=1.5)],
                         ids=["gem", "iso", "gem_resnet"])
def test_fused_layers_give_the_message_passing_ntk(make):
    torch.manual_seed(4)
    graph = grid_graph(3, 3, dtype=torch.float64)
    model = make().double().eval()  # GemResNet normalises by running statistics in eval mode
    x = torch.randn(9, 2, dtype=torch.float64)
    want = _agree(_unfused(model), (x, graph))
    for method in ("jacobian", "ntvp"):
        for trace in (True, False):
            got = empirical_ntk(model, (x, graph), method=method, trace=trace, vmap_chunk_size=5)
            torch.testing.assert_close(got, want.diagonal(dim1=2, dim2=3).sum(-1) if trace else want, rtol=0,
                                       atol=1e-10 * want.abs().max().item())


def test_forward_mode_through_the_fused_aggregation_matches_the_plain_path():
    torch.manual_seed(0)
    graph = grid_graph(3, 4, dtype=torch.float64)
    plain = GemConv(FieldType.scalars(2), FieldType([2, 1]), fused=False).double()
    fused = GemConv(FieldType.scalars(2), FieldType([2, 1]), fused=True).double()
    fused.load_state_dict(plain.state_dict())
    x, dx = torch.randn(12, 2, dtype=torch.float64), torch.randn(12, 2, dtype=torch.float64)
    _, want = torch.func.jvp(lambda v: plain(v, graph), (x,), (dx,))
    _, got = torch.func.jvp(lambda v: fused(v, graph), (x,), (dx,))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
    # the layer is affine in x, so a central difference is exact up to rounding
    step = 1e-3
    diff = (fused(x + step * dx, graph) - fused(x - step * dx, graph)) / (2 * step)
    torch.testing.assert_close(got, diff, rtol=0, atol=1e-9)


def test_iso_conv_on_healpix_graph_level():
    torch.manual_seed(2)
    graph = healpix_graph(1, dtype=torch.float64)
    model = IsoNet("graph").double()
    items = [(torch.randn(12, 2, dtype=torch.float64), graph) for _ in range(3)]
    assert _agree(model, items, items[:2], chunk_size=2).shape == (3, 2, 2, 2)


def test_graph_net_node_level_against_second_graph():
    torch.manual_seed(3)
    g1, g2 = grid_graph(2, 3, dtype=torch.float64), grid_graph(3, 3, dtype=torch.float64)
    model = NTKGraphNet(2, 6, 2, depth=2, bias_std=0.2).double()
    x1, x2 = torch.randn(6, 2, dtype=torch.float64), torch.randn(9, 2, dtype=torch.float64)
    assert _agree(model, (x1, g1), (x2, g2)).shape == (6, 9, 2, 2)


def test_bad_arguments_are_named():
    model = NTKMLP(3, 4)
    with pytest.raises(ValueError, match="method must be"):
        empirical_ntk(model, torch.randn(2, 3), method="exact")
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        empirical_ntk(model, torch.randn(2, 3), chunk_size=0)
    with pytest.raises(TypeError, match="inputs must be a tensor"):
        empirical_ntk(model, {"x": torch.randn(2, 3)})
    frozen = NTKMLP(3, 4).requires_grad_(False)
    with pytest.raises(ValueError, match="no parameters that require grad"):
        empirical_ntk(frozen, torch.randn(2, 3))


def test_packages_load_lazily():
    import subprocess
    import sys

    code = "import sys, meshgdl, meshgdl.ntk, meshgdl.ensembles; assert 'torch' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_lcnn_on_a_lattice_gauge_field_and_its_gauge_invariance():
    from meshgdl.geometry import lattice_graph
    from meshgdl.graph import gauge_transform
    from meshgdl.groups import random_element
    from meshgdl.nn import LCNN

    torch.manual_seed(0)
    model = LCNN(channels=(2,), out_channels=2, kernel_size=1, dim=2).double()
    graph = lattice_graph((3, 4), group="SU2", links="random", generator=torch.Generator().manual_seed(1))
    theta = _agree(model, (graph,))
    # the L-CNN's outputs are gauge invariant, so are its parameter gradients and hence its NTK
    omega = random_element("SU2", (graph.num_nodes,), generator=torch.Generator().manual_seed(2))
    moved = gauge_transform(graph, omega)
    assert not torch.allclose(moved.link, graph.link)
    torch.testing.assert_close(empirical_ntk(model, (moved,), trace=False), theta, rtol=0,
                               atol=1e-10 * theta.abs().max().item())
