import math

import healpy as hp
import numpy as np
import pytest
import torch

from meshgdl import gauge_transform
from meshgdl.field_type import FieldType
from meshgdl.geometry import healpix_grid_graph, healpix_rotation
from meshgdl.nn import CNGroupConv, CNLiftingConv, CyclicFieldType, DihedralFieldType, DNGroupConv, DNLiftingConv
from meshgdl.testing import assert_healpix_rotation_equivariant

from ..domains import Chain, randomize_biases


class PermutationOnly:
    """A field type that forgets the regular shift: rotations only permute nodes."""

    def __init__(self, dim):
        self.dim = dim

    def transform(self, x, angles):
        return x


def _sky(nside, cut):
    keep = None
    if cut:  # a latitude cut: kept by the polar rotations and by both reflections
        keep = np.abs(hp.pix2vec(nside, np.arange(12 * nside**2), nest=True)[2]) > 0.3
    return healpix_grid_graph(nside, mask=keep, dtype=torch.float64)


def c4_net():
    return randomize_biases(Chain(CNLiftingConv(2, 3, 4), CNGroupConv(3, 2, 4))).double()


@pytest.mark.parametrize("cut", [False, True])
@pytest.mark.parametrize("nside", [1, 2, 8])
def test_c4_group_conv_is_exactly_equivariant_to_polar_rotations(nside, cut):
    graph = _sky(nside, cut)
    x = torch.randn(graph.num_nodes, 2, dtype=torch.float64)
    out = CyclicFieldType(2, 4)
    assert assert_healpix_rotation_equivariant(c4_net(), graph, x, FieldType.scalars(2), out) < 1e-10
    conv = randomize_biases(CNGroupConv(2, 3, 4)).double()
    z = torch.randn(graph.num_nodes, 8, dtype=torch.float64)
    assert assert_healpix_rotation_equivariant(conv, graph, z, out, CyclicFieldType(3, 4)) < 1e-10


@pytest.mark.parametrize("nside", [2, 8])
def test_rotations_act_on_c4_fields_by_the_regular_shift(nside):
    # in a randomly turned quarter-turn gauge the rotation's angles are non-zero multiples of pi / 2,
    # and the fields must be shifted by them
    gen = torch.Generator().manual_seed(nside)
    turns = (math.pi / 2) * torch.randint(0, 4, (12 * nside**2,), generator=gen).double()
    graph = gauge_transform(_sky(nside, False), turns)
    for k in (1, 2, 3):
        angles = healpix_rotation(graph, k)[1]
        steps = angles / (math.pi / 2)
        assert (steps - steps.round()).abs().max() < 1e-9 and (steps.round() % 4 != 0).float().mean() > 0.5
    x = torch.randn(graph.num_nodes, 2, dtype=torch.float64)
    out = CyclicFieldType(2, 4)
    assert assert_healpix_rotation_equivariant(c4_net(), graph, x, FieldType.scalars(2), out) < 1e-10
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_healpix_rotation_equivariant(c4_net(), graph, x, FieldType.scalars(2), PermutationOnly(8))
    conv = randomize_biases(CNGroupConv(2, 2, 4)).double()
    z = torch.randn(graph.num_nodes, 8, dtype=torch.float64)
    assert assert_healpix_rotation_equivariant(conv, graph, z, out, out) < 1e-10
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_healpix_rotation_equivariant(conv, graph, z, PermutationOnly(8), out)


def healpix_reflection(graph, mirror):
    """``perm`` of a reflection of the sphere, from healpy's pixel centres: node m of the image is
    the pixel whose centre the mirror maps to node m's centre (mirrors are involutions)."""
    pos = graph.pos.numpy()
    image = pos * np.asarray(mirror, dtype=np.float64)
    pixel = hp.vec2pix(graph.nside, *image.T, nest=True)
    node = np.searchsorted(graph.pixel.numpy(), pixel)
    assert np.array_equal(graph.pixel.numpy()[node], pixel)
    assert np.abs(pos[node] - image).max() < 1e-12  # the centres map exactly onto centres
    return torch.from_numpy(node)


@pytest.mark.parametrize("cut", [False, True])
@pytest.mark.parametrize("nside", [1, 2, 8])
@pytest.mark.parametrize("mirror, rotation", [((1, -1, 1), 1), ((1, 1, -1), -1)])
def test_d4_group_conv_is_exactly_equivariant_to_reflections_of_the_sphere(nside, cut, mirror, rotation):
    # phi -> -phi swaps the grid axes x and y: theta -> pi/2 - theta, the element rho mu of D4;
    # z -> -z maps x to -y and y to -x: theta -> -pi/2 - theta, the element rho^-1 mu
    graph = _sky(nside, cut)
    perm = healpix_reflection(graph, mirror)
    x, y, face = hp.pix2xyf(nside, graph.pixel.numpy(), nest=True)
    xs, ys, _ = hp.pix2xyf(nside, graph.pixel.numpy()[perm.numpy()], nest=True)
    # the mirror transposes each face's grid: (x, y) -> (y, x), or (n - 1 - y, n - 1 - x) for z -> -z
    expected = (y, x) if mirror[2] > 0 else (nside - 1 - y, nside - 1 - x)
    assert np.array_equal(xs, expected[0]) and np.array_equal(ys, expected[1])
    t = DihedralFieldType(2, 4)
    net = randomize_biases(Chain(DNLiftingConv(2, 3, 4), DNGroupConv(3, 2, 4))).double()
    signal = torch.randn(graph.num_nodes, 2, dtype=torch.float64)
    with torch.no_grad():
        out = net(signal, graph)
        moved = net(signal[perm], graph)
        assert (moved - t.act(out[perm], rotation, True)).abs().max() < 1e-10
        assert (moved - out[perm]).abs().max() > 1e-3
        assert (moved - t.act(out[perm], 0, True)).abs().max() > 1e-3  # the axis of the reflection matters
        # and a regular D4 input field reflects the same way
        conv = randomize_biases(DNGroupConv(2, 2, 4)).double()
        z = torch.randn(graph.num_nodes, t.dim, dtype=torch.float64)
        assert (conv(t.act(z[perm], rotation, True), graph) - t.act(conv(z, graph)[perm], rotation, True)).abs().max() < 1e-10
    assert assert_healpix_rotation_equivariant(net, graph, signal, FieldType.scalars(2), t) < 1e-10
