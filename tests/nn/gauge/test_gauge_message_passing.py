import pytest
import torch

from meshgdl.field_type import FieldType
from meshgdl.nn import GaugeMessagePassing
from meshgdl.nn.functional.gem_basis import kernel_basis
from meshgdl.testing import assert_gauge_equivariant

from ..domains import domain


class VectorFromScalars(GaugeMessagePassing):
    """The gradient-like layer out_i = sum_j (x_j - x_i) logmap_ij, written with a kernel."""

    def __init__(self):
        super().__init__(FieldType([1]), FieldType([0, 1]))

    def message(self, x_j, x_i, edge_theta, edge_length, edge_weight):
        direction = torch.stack([torch.cos(edge_theta), torch.sin(edge_theta)], -1)
        return (x_j - x_i) * edge_length[:, None] * direction


class KernelLayer(GaugeMessagePassing):
    def __init__(self, m, n):
        super().__init__(FieldType([0] * m + [1]), FieldType([0] * n + [1]))
        self.m, self.n = m, n

    def kernel(self, edge_theta, edge_length):
        return kernel_basis(self.m, self.n, edge_theta).sum(0)


def test_message_gets_transported_features_and_the_log_map_angle():
    graph, _ = domain("sphere")
    layer = VectorFromScalars()
    x = graph.pos[:, 2:3].clone()        # height: the gradient is the tangent part of e_z
    out = layer(x, graph)
    expected = torch.zeros_like(out).index_add_(0, graph.edge_index[1], (x[graph.edge_index[0]] - x[graph.edge_index[1]]) * graph.edge_logmap)
    assert torch.allclose(out, expected, atol=1e-14)
    assert assert_gauge_equivariant(layer, x, graph, FieldType([1]), FieldType([0, 1])) < 1e-10


@pytest.mark.parametrize("m,n", [(0, 2), (1, 1), (2, 1), (1, 0)])
def test_kernel_route_is_equivariant(m, n):
    graph, _ = domain("torus")
    layer = KernelLayer(m, n)
    x = torch.randn(graph.num_nodes, layer.in_type.dim, dtype=torch.float64)
    assert assert_gauge_equivariant(layer, x, graph, layer.in_type, layer.out_type) < 1e-10


def test_transport_applies_rho_of_the_transport_angle():
    layer = GaugeMessagePassing(FieldType([1, 1, 1]))
    a = torch.tensor([0.3, -1.2], dtype=torch.float64)
    x = torch.randn(2, 5, dtype=torch.float64)
    out = layer.transport(x, a)
    assert torch.equal(out[:, 0], x[:, 0])
    for k, sl in [(1, slice(1, 3)), (2, slice(3, 5))]:
        rot = torch.stack([torch.stack([torch.cos(k * a), -torch.sin(k * a)], -1),
                           torch.stack([torch.sin(k * a), torch.cos(k * a)], -1)], -2)
        assert torch.allclose(out[:, sl], (rot @ x[:, sl, None])[..., 0], atol=1e-15)


def test_a_layer_without_message_or_kernel_says_so():
    graph, _ = domain("torus")
    with pytest.raises(NotImplementedError, match="message"):
        GaugeMessagePassing(FieldType([1]))(torch.zeros(graph.num_nodes, 1, dtype=torch.float64), graph)
