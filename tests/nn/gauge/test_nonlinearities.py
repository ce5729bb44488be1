import math

import pytest
import torch

from meshgdl.field_type import FieldType
from meshgdl.nn import (GatedNonlinearity, GaugeBatchNorm, GaugeLayerNorm, GemConv, NormNonlinearity,
                        RegularNonlinearity)
from meshgdl.nn.gauge.regular_nonlinearity import regular_nonlinearity_error
from meshgdl.testing import assert_gauge_equivariant

from ..domains import DOMAINS, Chain, check_all, domain, randomize_biases

TYPE = FieldType.uniform(3, 2)


def conv_then(layer, in_type, mid_type, out_type):
    """GemConv -> layer -> GemConv: a block with random biases, as a whole."""
    net = Chain(GemConv(in_type, mid_type), layer, GemConv(layer_out(layer, mid_type), out_type))
    return randomize_biases(net)


def layer_out(layer, mid_type):
    return layer.out_type if isinstance(layer, GatedNonlinearity) else mid_type


LAYERS = {
    "norm": lambda: (NormNonlinearity(TYPE), TYPE),
    "gated": lambda: (GatedNonlinearity(TYPE), GatedNonlinearity.input_type(TYPE)),
    "batch_norm": lambda: (GaugeBatchNorm(TYPE), TYPE),
    "layer_norm": lambda: (GaugeLayerNorm(TYPE), TYPE),
}


@pytest.mark.parametrize("name", DOMAINS)
@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_exact_layers_inside_a_block_are_equivariant(name, layer):
    graph, build = domain(name)
    module, mid = LAYERS[layer]()
    block = conv_then(module.double(), FieldType([2, 1]), mid, FieldType([1, 1, 1]))
    x = torch.randn(graph.num_nodes, 4, dtype=torch.float64)
    errors = check_all(block, x, graph, build, FieldType([2, 1]), FieldType([1, 1, 1]))
    assert max(errors.values()) < 1e-10


@pytest.mark.parametrize("name", ["mesh", "grid"])
def test_regular_nonlinearity_is_exact_for_multiples_of_its_sample_spacing(name):
    graph, build = domain(name)
    n = 7
    block = conv_then(RegularNonlinearity(TYPE, num_samples=n).double(), FieldType([2, 1]), TYPE, FieldType([1, 1, 1]))
    x = torch.randn(graph.num_nodes, 4, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    angles = 2 * math.pi / n * torch.randint(0, n, (graph.num_nodes,), generator=gen).double()
    assert assert_gauge_equivariant(block, x, graph, FieldType([2, 1]), FieldType([1, 1, 1]), angles=angles) < 1e-10


@pytest.mark.parametrize("name", DOMAINS)
def test_regular_nonlinearity_is_within_its_documented_bound_for_other_angles(name):
    # docs/nonlinearities.md: with N = 16 at order 2, inside a GemConv block, below 5 % (max entry).
    graph, build = domain(name)
    block = conv_then(RegularNonlinearity(TYPE, num_samples=16).double(), FieldType([2, 1]), TYPE, FieldType([1, 1, 1]))
    x = torch.randn(graph.num_nodes, 4, dtype=torch.float64)
    errors = check_all(block, x, graph, build, FieldType([2, 1]), FieldType([1, 1, 1]), rtol=0.05)
    assert errors["permutation"] < 1e-10 and errors["rotation"] < 1e-10
    assert 1e-6 < errors["gauge"] < 0.05


def test_regular_nonlinearity_error_against_number_of_samples():
    # The N = 5 of the GEM paper is off by about 27 % at order 2; the error falls fast with N.
    mean5, max5 = regular_nonlinearity_error(2, 5)
    assert 0.25 < mean5 < 0.31 and max5 < 0.5
    errors = [regular_nonlinearity_error(2, n, num_inputs=1024)[0] for n in (5, 8, 16, 32)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.005
    assert regular_nonlinearity_error(2, 16, num_angles=16)[1] < 1e-12   # multiples of 2 pi / 16: exact


def test_regular_nonlinearity_applies_the_function_to_samples():
    layer = RegularNonlinearity(FieldType.uniform(1, 1), fn=lambda v: v, num_samples=5).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    assert torch.allclose(layer(x), x, atol=1e-14)    # identity function: the projection is exact
    square = RegularNonlinearity(FieldType.uniform(1, 1), fn=torch.square, num_samples=8).double()
    a0, a1, b1 = 0.5, 1.0, -2.0   # (a0 + a1 cos + b1 sin)^2 = a0^2 + (a1^2 + b1^2)/2 + 2 a0 (a1 cos + b1 sin) + freq 2
    out = square(torch.tensor([[a0, a1, b1]], dtype=torch.float64))
    assert torch.allclose(out, torch.tensor([[a0**2 + (a1**2 + b1**2) / 2, 2 * a0 * a1, 2 * a0 * b1]], dtype=torch.float64))


def test_norm_and_gated_nonlinearities_by_formula():
    x = torch.tensor([[-1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)     # one scalar, two... [1, 0, ...]
    layer = NormNonlinearity(FieldType([2, 1])).double()
    with torch.no_grad():
        layer.bias.fill_(-4.0)
    assert torch.allclose(layer(x), torch.tensor([[0.0, 2.0, 0.6, 0.8]], dtype=torch.float64))
    gated = GatedNonlinearity(FieldType([1, 1]))
    assert gated.in_type == FieldType([2, 1])
    out = gated(torch.tensor([[-1.0, 0.0, 3.0, 4.0]]))
    assert torch.allclose(out, torch.tensor([[0.0, 1.5, 2.0]]))


def test_batch_norm_normalises_and_keeps_running_statistics():
    norm = GaugeBatchNorm(FieldType([2, 1]), affine=False).double()
    x = torch.randn(1000, 4, dtype=torch.float64) * 3 + torch.tensor([5.0, 0, 0, 0], dtype=torch.float64)
    y = norm(x)
    assert torch.allclose(y[:, :2].mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(y[:, :2].var(0, unbiased=False), torch.ones(2, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(y[:, 2:].square().sum(-1).mean(), torch.tensor(2.0, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(norm.running_mean[0], torch.tensor(0.5, dtype=torch.float64), atol=0.05)
    norm.eval()
    assert not torch.allclose(norm(x), y)


def test_layer_norm_gives_unit_power_per_node():
    y = GaugeLayerNorm(FieldType([3, 2]), affine=False)(torch.randn(10, 7) * 5)
    power = (y[:, :3] - y[:, :3].mean(-1, keepdim=True)).square().sum(-1) + y[:, 3:].square().sum(-1)
    assert torch.allclose(power / 7, torch.ones(10), atol=1e-4)


def test_bad_field_types():
    with pytest.raises(ValueError, match="uniform"):
        RegularNonlinearity(FieldType([2, 1]))
    with pytest.raises(ValueError, match="num_samples"):
        RegularNonlinearity(FieldType.uniform(1, 3), num_samples=6)
