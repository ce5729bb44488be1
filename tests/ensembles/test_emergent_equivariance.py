"""The theorem of Gerken and Kessel (2024), checked exactly with the analytic NTK: the mean prediction
of an infinite ensemble trained on full C4 orbits is C4-invariant at every time, also far from the data."""
import math

import pytest
import torch

from meshgdl.ensembles import CyclicRotations, augment_full_orbit, orbit
from meshgdl.ntk import gradient_flow_mean, mlp_kernels


def _orbit_gap(train_x, train_y, test_x, t, activation):
    kernel = dict(depth=2, bias_std=0.4, activation=activation)
    k_train = mlp_kernels(train_x, **kernel).ntk
    test_orbit = orbit(test_x, CyclicRotations(4)).flatten(0, 1)  # [4 B, H, W]
    mu = gradient_flow_mean(mlp_kernels(test_orbit, train_x, **kernel).ntk, k_train, train_y, t, learning_rate=0.5)
    mu = mu.reshape(4, test_x.shape[0], -1)
    return (mu - mu[0]).abs().max().item(), mu[0].abs().max().item()


# erf: exact to rounding everywhere. ReLU: the arc-cosine kernel turns a rounding error of 1e-16 in
# the cosine of two coincident inputs into 1e-8 (arccos(1 - e) ~ sqrt(2 e)), so at the training
# images, whose rotated copies are training images too, it is invariant to that level only (2e-8 here).
@pytest.mark.parametrize("activation,tol_data,tol_far", [("erf", 1e-10, 1e-10), ("relu", 1e-7, 1e-10)])
def test_full_orbit_augmentation_gives_an_exactly_invariant_mean_at_every_time(activation, tol_data, tol_far):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, 5, 5, generator=gen, dtype=torch.float64)
    y = torch.nn.functional.one_hot(torch.arange(6) % 3, 3).double()
    far = 10 * torch.randn(4, 5, 5, generator=gen, dtype=torch.float64)  # noise images far from the data
    xa, ya = augment_full_orbit(x, y, CyclicRotations(4))
    for t in (0.1, 1.0, 30.0, math.inf):
        for test, tol in ((x, tol_data), (far, tol_far)):
            gap, scale = _orbit_gap(xa, ya, test, t, activation)
            assert gap < tol * scale, (t, gap, scale)
            assert scale > 1e-3  # the prediction is not trivially zero
        # trained on the data alone, the same kernel is not invariant
        gap, scale = _orbit_gap(x, y, far, t, activation)
        assert gap > 1e-2 * scale, (t, gap, scale)
