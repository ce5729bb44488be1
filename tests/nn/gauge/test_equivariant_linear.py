import pytest
import torch

from meshgdl.field_type import FieldType
from meshgdl.nn import EquivariantLinear
from meshgdl.nn.models import GemResBlock
from meshgdl.testing import assert_gauge_equivariant

from ..domains import DOMAINS, check_all, domain, randomize_biases

IN, OUT = FieldType([2, 1, 1]), FieldType([3, 2, 0, 1])


@pytest.mark.parametrize("name", DOMAINS)
def test_residual_block_with_a_mixing_skip_is_equivariant_with_random_biases(name):
    graph, build = domain(name)
    block = randomize_biases(GemResBlock(IN, OUT, nonlinearity="norm", norm="batch"))
    assert isinstance(block.skip, EquivariantLinear)
    x = torch.randn(graph.num_nodes, IN.dim, dtype=torch.float64)
    assert max(check_all(block, x, graph, build, IN, OUT).values()) < 1e-10


class BiasOnEveryChannel(EquivariantLinear):
    """The published GEM-CNN mistake: a bias added to every irrep of a 1x1 mixing layer."""

    def __init__(self, *args):
        super().__init__(*args)
        self.full_bias = torch.nn.Parameter(torch.randn(self.out_type.dim))

    def forward(self, x, graph=None):
        return x @ self.matrix().T + self.full_bias


def test_a_bias_on_pairs_breaks_equivariance_and_the_check_sees_it():
    graph, _ = domain("mesh")
    x = torch.randn(graph.num_nodes, IN.dim, dtype=torch.float64)
    assert assert_gauge_equivariant(randomize_biases(EquivariantLinear(IN, OUT)), x, graph, IN, OUT) < 1e-12
    with pytest.raises(AssertionError, match="gauge"):
        assert_gauge_equivariant(BiasOnEveryChannel(IN, OUT), x, graph, IN, OUT)


def test_equivariant_linear_structure():
    lin = EquivariantLinear(IN, OUT)
    m = lin.matrix()
    assert m.shape == (OUT.dim, IN.dim)
    assert torch.all(m[3:7, :2] == 0) and torch.all(m[7:9, 2:4] == 0)     # frequencies never mix
    a, b = m[3, 2], m[4, 2]
    assert torch.allclose(m[3:5, 2:4], torch.stack([torch.stack([a, -b]), torch.stack([b, a])]))   # a rotation-scaling
    assert repr(lin) == "EquivariantLinear(FieldType([2, 1, 1]), FieldType([3, 2, 0, 1]))"
    with pytest.raises(TypeError, match="FieldType"):
        EquivariantLinear(3, OUT)
