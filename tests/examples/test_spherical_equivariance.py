"""DeepSphere's rotation-equivariance error: zero for a layer that commutes with rotations, not for one that does not."""
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def example():
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield importlib.import_module("spherical_equivariance")
    finally:
        sys.path.remove(str(EXAMPLES))


def test_pointwise_scaling_commutes_and_a_position_dependent_one_does_not(example):
    import healpy as hp

    nside = 8
    z = np.stack(hp.pix2vec(nside, np.arange(12 * nside * nside), nest=True), 1)[:, 2:]
    assert example.equivariance_error(lambda f: np.concatenate([2.5 * f, -f], 1), nside, samples=3) < 1e-12
    assert example.equivariance_error(lambda f: f * (1 + z), nside, samples=3) > 1e-2


def test_rotation_of_a_band_limited_map_is_a_rotation(example):
    import healpy as hp

    # the harmonic rotation moves values with the points: f(R^-1 p) for the dipole f(p) = p_z, up to
    # healpy's quadrature (map2alm with 3 iterations: about 1 % at nside 16), and not f(R p)
    nside = 16
    p = np.stack(hp.pix2vec(nside, np.arange(12 * nside * nside), nest=True), 1)
    rot = example.random_rotation(np.random.default_rng(0))
    matrix = rot.mat
    turned = example.rotate_nested(p[:, 2:], rot)[:, 0]
    np.testing.assert_allclose(turned, (p @ matrix)[:, 2], atol=2e-2)
    assert np.abs(turned - (p @ matrix.T)[:, 2]).max() > 0.1
