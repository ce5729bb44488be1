"""The layers on HEALPix: gauge equivariance, and exact equivariance under the 90 degree rotations
about the polar axis, on the full sky and on a cut sky that the rotations keep, in float64."""
import healpy as hp
import numpy as np
import pytest
import torch

from meshgdl import FieldType, gauge_transform
from meshgdl.geometry import healpix_graph, healpix_rotation
from meshgdl.nn import GemConv, IsoConv
from meshgdl.nn.models import GemResNet
from meshgdl.testing import (assert_gauge_equivariant, assert_healpix_rotation_equivariant,
                             assert_symmetry_equivariant)

from ..domains import randomize_biases

TYPE = FieldType([2, 1, 1])


class IgnoresTransport(GemConv):
    """Uses the neighbours' features in their own frames."""

    def transport(self, x_j, edge_transport):
        return x_j


def _cut_sky(nside: int) -> np.ndarray:
    """A galactic-plane cut and four holes, one a quadrant: invariant under quarter turns only."""
    theta, phi = hp.pix2ang(nside, np.arange(12 * nside**2), nest=True)
    holes = (np.mod(phi, np.pi / 2) < 0.5) & (theta < 1.2)
    return (np.abs(theta - np.pi / 2) > 0.25) & ~holes


def _graph(nside: int, sky: str, gauge: bool):
    graph = healpix_graph(nside, mask=_cut_sky(nside) if sky == "cut" else None, dtype=torch.float64)
    if gauge:   # frames turned at random, so the rotation's gauge angles are not all zero
        gen = torch.Generator().manual_seed(nside)
        graph = gauge_transform(graph, 6.3 * torch.rand(graph.num_nodes, generator=gen, dtype=torch.float64))
    return graph


def _layers(graph):
    cutoff = float(graph.edge_logmap.norm(dim=-1).max()) * 1.01
    torch.manual_seed(0)
    return {
        "GemConv": (randomize_biases(GemConv(TYPE, TYPE, num_radial=2, cutoff=cutoff)), TYPE, TYPE),
        "IsoConv": (randomize_biases(IsoConv(3, 4, num_radial=2, cutoff=cutoff)), FieldType.scalars(3), None),
        "GemResNet": (randomize_biases(GemResNet(TYPE, 3, FieldType([2, 2, 1]), num_blocks=1, num_radial=2,
                                                 cutoff=cutoff)), TYPE, None),
    }


def _check_rotations(module, x, graph, in_type, out_type) -> float:
    module = module.double()
    err = assert_healpix_rotation_equivariant(module, graph, x, in_type, out_type, atol=1e-10)
    for k in (1, 2, 3):    # the same through the generic check, which first proves the graph symmetric
        perm, angles = healpix_rotation(graph, k)
        err = max(err, assert_symmetry_equivariant(module, x, graph, perm, angles, in_type, out_type, rtol=1e-10))
    return err


@pytest.mark.parametrize("nside,sky", [(2, "full"), (4, "cut")])
@pytest.mark.parametrize("gauge", [False, True], ids=["east-north", "random-gauge"])
@pytest.mark.parametrize("name", ["GemConv", "IsoConv", "GemResNet"])
def test_layers_are_gauge_and_exactly_rotation_equivariant_on_healpix(name, nside, sky, gauge):
    graph = _graph(nside, sky, gauge)
    module, in_type, out_type = _layers(graph)[name]
    x = torch.randn(graph.num_nodes, in_type.dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert assert_gauge_equivariant(module, x, graph, in_type, out_type) < 1e-10
    assert _check_rotations(module, x, graph, in_type, out_type) < 1e-10
    # not vacuous: the rotation moves the output
    y = module(x, graph)
    perm, _ = healpix_rotation(graph, 1)
    assert (y[perm] - y).abs().max() > 1e-3 * y.abs().max()


def test_a_layer_that_ignores_the_transport_fails_only_in_a_turned_gauge():
    # east/north frames make every rotation angle zero: the rotation is then a bare permutation,
    # which the bug survives; in a random gauge it does not
    for gauge, fails in ((False, False), (True, True)):
        graph = _graph(2, "full", gauge)
        x = torch.randn(graph.num_nodes, TYPE.dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        layer = IgnoresTransport(TYPE, TYPE)
        if fails:
            with pytest.raises(AssertionError, match="90 degrees"):
                assert_healpix_rotation_equivariant(layer.double(), graph, x, TYPE, TYPE, atol=1e-10)
        else:
            assert assert_healpix_rotation_equivariant(layer.double(), graph, x, TYPE, TYPE, atol=1e-10) < 1e-10


def test_a_broken_graph_fails_the_rotation_check():
    graph = _graph(2, "full", gauge=True)
    module, in_type, out_type = _layers(graph)["GemConv"]
    x = torch.randn(graph.num_nodes, in_type.dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert _check_rotations(module, x, graph, in_type, out_type) < 1e-10
    broken = graph.clone()
    broken.edge_transport = broken.edge_transport.clone()
    broken.edge_transport[5] += 0.3          # one transport angle wrong: the graph is no longer symmetric
    assert assert_gauge_equivariant(module, x, broken, in_type, out_type) < 1e-10   # invisible to this check
    with pytest.raises(AssertionError, match="90 degrees"):
        assert_healpix_rotation_equivariant(module.double(), broken, x, in_type, out_type, atol=1e-10)
    with pytest.raises(ValueError, match="edge_transport differs"):
        assert_symmetry_equivariant(module, x, broken, *healpix_rotation(broken, 1), in_type, out_type)
    # the right permutation with the wrong gauge angles (those of the east/north frames) is caught too
    perm, angles = healpix_rotation(graph, 1)
    with pytest.raises(ValueError, match="not a symmetry"):
        assert_symmetry_equivariant(module, x, graph, perm, torch.zeros_like(angles), in_type, out_type)
