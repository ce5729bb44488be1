"""Infinite-width kernels against quadrature, Monte Carlo over random networks, and wide networks."""
import math

import numpy as np
import pytest
import torch

from meshgdl.geometry import grid_graph
from meshgdl.ntk import (NTKGraphNet, NTKMLP, empirical_ntk, gaussian_expectations, graph_kernels,
                         mean_aggregation, mlp_kernels)


def _expectation(k11, k22, k12, phi, smooth):
    """E[phi(u) phi(v)] with u = a z1, v = b (rho z1 + sqrt(1 - rho^2) z2): a 2D Gauss-Hermite rule
    for smooth phi, Monte Carlo with 4 million samples for the ReLU's kink and step."""
    if smooth:
        z, w = np.polynomial.hermite_e.hermegauss(150)
        z1, z2, w = z[:, None], z[None, :], (w[:, None] * w[None, :]) / w.sum() ** 2
    else:
        z1, z2 = np.random.default_rng(0).standard_normal((2, 4_000_000))
        w = np.full(z1.shape, 1 / z1.size)
    a, b = math.sqrt(k11), math.sqrt(k22)
    rho = k12 / (a * b)
    return float((w * phi(a * z1) * phi(b * (rho * z1 + math.sqrt(1 - rho**2) * z2))).sum())


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_gaussian_expectations_against_quadrature(activation):
    from scipy.special import erf

    phi, dphi = {"relu": (lambda s: np.maximum(s, 0), lambda s: (s > 0).astype(float)),
                 "erf": (erf, lambda s: 2 / math.sqrt(math.pi) * np.exp(-s**2))}[activation]
    for k11, k22, k12 in [(1.0, 1.0, 0.3), (2.0, 0.5, -0.7), (0.7, 1.3, 0.9)]:
        e, e_dot = gaussian_expectations(*(torch.tensor(v, dtype=torch.float64) for v in (k11, k22, k12)),
                                         activation)
        smooth = activation == "erf"
        tol = 1e-10 if smooth else 3e-3  # Monte Carlo: about 5 standard errors
        assert e.item() == pytest.approx(_expectation(k11, k22, k12, phi, smooth), abs=tol)
        assert e_dot.item() == pytest.approx(_expectation(k11, k22, k12, dphi, smooth), abs=tol)


def test_erf_nngp_is_the_arcsine_kernel():
    # one erf layer, no bias: K(x, x') = (2/pi) arcsin(2 s / sqrt((1 + 2 s_xx)(1 + 2 s_x'x'))), s = x.x'/d
    torch.manual_seed(0)
    x = torch.randn(5, 3, dtype=torch.float64)
    s = x @ x.T / 3
    d = s.diagonal()
    expected = 2 / math.pi * torch.arcsin(2 * s / torch.sqrt((1 + 2 * d[:, None]) * (1 + 2 * d[None, :])))
    got = mlp_kernels(x, depth=1, activation="erf").nngp
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-14)


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_nngp_is_the_output_covariance_of_random_wide_networks(activation):
    torch.manual_seed(1)
    x = torch.randn(4, 3, dtype=torch.float64)
    nets, outputs = 400, 8
    samples = torch.cat([NTKMLP(3, 256, outputs, depth=2, activation=activation, bias_std=0.5).double()(x).detach().T
                         for _ in range(nets)])  # [nets * outputs, 4]
    covariance = samples.T @ samples / samples.shape[0]
    expected = mlp_kernels(x, depth=2, activation=activation, bias_std=0.5).nngp
    # Monte Carlo error ~ 1/sqrt(nets), finite width ~ 1/width
    assert ((covariance - expected).norm() / expected.norm()).item() < 0.08


def test_empirical_ntk_converges_like_inverse_square_root_of_width():
    torch.manual_seed(2)
    x = torch.randn(6, 5, dtype=torch.float64)
    kernel = mlp_kernels(x, depth=1, bias_std=0.5).ntk
    widths, errors = [256, 1024, 4096], []
    for width in widths:
        rel = [((empirical_ntk(NTKMLP(5, width, depth=1, bias_std=0.5).double(), x) - kernel).norm()
                / kernel.norm()).item() for _ in range(12)]
        errors.append(np.sqrt(np.mean(np.square(rel))))
    slope = np.polyfit(np.log(widths), np.log(errors), 1)[0]
    assert -0.7 < slope < -0.3, (errors, slope)
    assert errors[-1] < 0.05


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_deep_network_ntk_matches_at_large_width(activation):
    torch.manual_seed(3)
    x = torch.randn(5, 4, dtype=torch.float64)
    kernel = mlp_kernels(x, depth=3, activation=activation, weight_std=1.2, bias_std=0.3).ntk
    net = NTKMLP(4, 1024, depth=3, activation=activation, weight_std=1.2, bias_std=0.3).double()
    assert ((empirical_ntk(net, x, method="ntvp") - kernel).norm() / kernel.norm()).item() < 0.1


def test_graph_ntk_of_wide_isotropic_network():
    torch.manual_seed(4)
    g1, g2 = grid_graph(3, 3, dtype=torch.float64), grid_graph(2, 3, dtype=torch.float64)
    x1, x2 = torch.randn(9, 2, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    a1, a2 = mean_aggregation(g1), mean_aggregation(g2)
    kernels = graph_kernels(x1, a1, x2, a2, depth=2, bias_std=0.3)
    errors = []
    for width in (64, 2048):
        net = NTKGraphNet(2, width, depth=2, bias_std=0.3).double()
        errors.append(((empirical_ntk(net, (x1, g1), (x2, g2)) - kernels.ntk).norm() / kernels.ntk.norm()).item())
    assert errors[1] < 0.06 and errors[1] < errors[0], errors
    # mean readout: the kernel of graph-level outputs is the node kernel averaged over both graphs
    pooled = graph_kernels(x1, a1, x2, a2, depth=2, bias_std=0.3, pool1=torch.full((1, 9), 1 / 9.0, dtype=torch.float64),
                           pool2=torch.full((1, 6), 1 / 6.0, dtype=torch.float64))
    torch.testing.assert_close(pooled.ntk, kernels.ntk.mean().reshape(1, 1), rtol=1e-12, atol=0)
    net = NTKGraphNet(2, 2048, depth=2, bias_std=0.3, readout="mean").double()
    got = empirical_ntk(net, [(x1, g1)], [(x2, g2)])
    nodes = NTKGraphNet(2, 2048, depth=2, bias_std=0.3).double()
    nodes.load_state_dict(net.state_dict())
    torch.testing.assert_close(got, empirical_ntk(nodes, (x1, g1), (x2, g2)).mean().reshape(1, 1), rtol=1e-10, atol=0)
    assert abs(got.item() / pooled.ntk.item() - 1) < 0.15  # one entry fluctuates more than the whole matrix


def test_mean_aggregation_is_the_row_normalised_adjacency():
    graph = grid_graph(2, 2, dtype=torch.float64)
    a = mean_aggregation(graph)
    torch.testing.assert_close(a.sum(1), torch.ones(4, dtype=torch.float64))
    # every corner of a 2 x 2 grid has its two edge neighbours, never itself or the opposite corner
    torch.testing.assert_close(a, torch.tensor([[0, .5, .5, 0], [.5, 0, 0, .5], [.5, 0, 0, .5], [0, .5, .5, 0]],
                                               dtype=torch.float64))


def test_bad_kernel_arguments():
    x = torch.randn(3, 2)
    with pytest.raises(ValueError, match="activation must be"):
        mlp_kernels(x, activation="tanh")
    with pytest.raises(ValueError, match="depth"):
        mlp_kernels(x, depth=-1)
    with pytest.raises(ValueError, match="mean_aggregation"):
        graph_kernels(x, torch.eye(2))


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_cross_kernels_are_blocks_of_the_joint_kernel_and_graph_kernels_without_edges(activation):
    torch.manual_seed(5)
    x1, x2 = torch.randn(4, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    kw = dict(depth=3, activation=activation, weight_std=1.3, bias_std=0.2)
    joint = mlp_kernels(torch.cat([x1, x2]), **kw)
    cross = mlp_kernels(x1, x2, **kw)
    for j, c in zip(joint, cross):
        torch.testing.assert_close(c, j[:4, 4:], rtol=1e-12, atol=0)
    # a graph without edges aggregates nothing: the graph network is the fully connected one
    none1, none2 = torch.zeros(4, 4, dtype=torch.float64), torch.zeros(5, 5, dtype=torch.float64)
    for g, c in zip(graph_kernels(x1, none1, x2, none2, **kw), cross):
        torch.testing.assert_close(g, c, rtol=1e-12, atol=0)
