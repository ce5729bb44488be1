import math

import pytest
import torch

from meshgdl.field_type import FieldType
from meshgdl.nn import GaugeMessagePassing, GemConv
from meshgdl.testing import (assert_gauge_equivariant, assert_permutation_equivariant, assert_rotation_invariant,
                             assert_symmetry_equivariant)

from .nn.domains import domain, grid_rotation, point_cloud_graph

IN, OUT = FieldType([2, 1, 1]), FieldType([1, 2])


class IgnoresTransport(GemConv):
    """A GEM layer with one bug: neighbours' features are used in their own frames."""

    def transport(self, x_j, edge_transport):
        return x_j


class UsesPositions(torch.nn.Module):
    def forward(self, x, graph):
        return x * graph.pos[:, :1]


class UsesNodeIds(torch.nn.Module):
    def forward(self, x, graph):
        return x + torch.arange(x.shape[0], dtype=x.dtype)[:, None]


class FirstLogmapComponent(GaugeMessagePassing):
    """Reads the x coordinate of the log map as if it were a scalar: depends on the gauge."""

    def __init__(self):
        super().__init__(FieldType([1]))

    def message(self, x_j, edge_theta, edge_length, edge_weight):
        return x_j * torch.cos(edge_theta)[:, None] ** 3


def test_correct_layer_passes_and_the_error_is_returned():
    graph, build = domain("sphere")
    conv = GemConv(IN, OUT)
    x = torch.randn(graph.num_nodes, IN.dim)
    errors = [assert_permutation_equivariant(conv, x, graph), assert_gauge_equivariant(conv, x, graph, IN, OUT),
              assert_rotation_invariant(conv, x, graph, build=build)]
    assert all(isinstance(e, float) and 0 <= e < 1e-12 for e in errors)
    assert conv.weight.dtype == torch.float32 and x.dtype == torch.float32   # the caller's objects untouched


def test_layer_that_ignores_the_transport_fails_gauge_equivariance():
    graph, _ = domain("sphere")
    conv = IgnoresTransport(IN, OUT)
    x = torch.randn(graph.num_nodes, IN.dim)
    assert assert_permutation_equivariant(conv, x, graph) < 1e-10    # the bug is invisible to this check
    with pytest.raises(AssertionError, match="gauge equivariance: relative error"):
        assert_gauge_equivariant(conv, x, graph, IN, OUT)


def test_broken_layers_fail_the_other_checks():
    graph, build = domain("torus")
    x = torch.randn(graph.num_nodes, 3)
    with pytest.raises(AssertionError, match="rotation invariance"):
        assert_rotation_invariant(UsesPositions(), x, graph, build=build)
    with pytest.raises(AssertionError, match="permutation"):
        assert_permutation_equivariant(UsesNodeIds(), x, graph)
    with pytest.raises(AssertionError, match="gauge"):
        assert_gauge_equivariant(FirstLogmapComponent(), x[:, :1], graph, FieldType([1]))


def test_rotation_check_without_a_rebuild_is_refused():
    # rotating pos and frame alone changes nothing a framed layer reads: such a check cannot fail
    graph, _ = domain("torus")
    with pytest.raises(TypeError, match="needs build.*could not fail"):
        assert_rotation_invariant(UsesPositions(), torch.randn(graph.num_nodes, 3), graph)


def test_rotation_check_catches_frames_tied_to_a_global_axis():
    # e1 along the fixed x axis: a rotation of the cloud changes the gauge, which scalars do not see
    def fixed_axis(pos):
        return point_cloud_graph(pos, reference=torch.tensor([1.0, 0.0, 0.0]).expand(len(pos), 3))

    graph, intrinsic = domain("points")
    x = torch.randn(graph.num_nodes, IN.dim, dtype=torch.float64)
    assert assert_rotation_invariant(GemConv(IN, OUT), x, graph, build=intrinsic) < 1e-10
    scalars = FieldType([2])
    assert assert_rotation_invariant(GemConv(scalars, scalars), x[:, :2], graph, build=fixed_axis) < 1e-10
    with pytest.raises(AssertionError, match="rotation invariance"):
        assert_rotation_invariant(GemConv(scalars, OUT), x[:, :2], graph, build=fixed_axis)


def test_graph_level_outputs_are_checked_for_invariance():
    graph, _ = domain("torus")
    pooled = lambda x, g: x[:, :1].sum(0, keepdim=True)   # noqa: E731
    assert assert_permutation_equivariant(pooled, torch.randn(graph.num_nodes, 3), graph) < 1e-12
    assert assert_gauge_equivariant(pooled, torch.randn(graph.num_nodes, 3), graph, FieldType([1, 1])) == 0.0


def test_symmetry_check_on_the_grid_rotation():
    graph, _ = domain("grid")
    perm, angles = grid_rotation(8)
    conv = GemConv(IN, OUT)
    x = torch.randn(graph.num_nodes, IN.dim)
    assert assert_symmetry_equivariant(conv, x, graph, perm, angles, IN, OUT) < 1e-10
    with pytest.raises(AssertionError, match="symmetry"):
        assert_symmetry_equivariant(FirstLogmapComponent(), x[:, :1], graph, perm, angles, FieldType([1]))
    with pytest.raises(ValueError, match="sign of angles"):
        assert_symmetry_equivariant(conv, x, graph, perm, -angles, IN, OUT)
    shift = torch.roll(torch.arange(graph.num_nodes), 1)
    with pytest.raises(ValueError, match="not a symmetry"):
        assert_symmetry_equivariant(conv, x, graph, shift, angles, IN, OUT)


def test_input_size_mismatch_is_a_value_error():
    graph, _ = domain("torus")
    with pytest.raises(ValueError, match="rows"):
        assert_permutation_equivariant(GemConv(IN, OUT), torch.randn(3, IN.dim), graph)


def test_exact_four_fold_symmetry_angle_is_a_right_angle():
    perm, angles = grid_rotation(4)
    assert torch.equal(perm[perm[perm[perm]]], torch.arange(16))
    assert torch.allclose(angles, torch.full((16,), -math.pi / 2, dtype=torch.float64))
