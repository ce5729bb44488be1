"""Kernel gradient flow against direct integration of its ODE, and against trained wide networks."""
import math

import pytest
import torch

from meshgdl.ntk import NTKMLP, gradient_flow_mean, mlp_kernels, nngp_posterior


def _rk4(k_train, k_test, y, f0_train, f0_test, t, eta, steps):
    """Integrate d f(X)/dt = -eta K(X, X) (f(X) - Y), d f(x)/dt = -eta K(x, X) (f(X) - Y) by RK4."""
    h = t / steps
    rate = lambda f: -eta * (f - y)  # noqa: E731
    f, g = f0_train.clone(), f0_test.clone()
    for _ in range(steps):
        r1 = rate(f)
        r2 = rate(f + h / 2 * k_train @ r1)
        r3 = rate(f + h / 2 * k_train @ r2)
        r4 = rate(f + h * k_train @ r3)
        step = (r1 + 2 * r2 + 2 * r3 + r4) / 6
        f, g = f + h * k_train @ step, g + h * k_test @ step
    return f, g


def _data(n=6, m=4, d=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x, xt = torch.randn(n, d, generator=gen, dtype=torch.float64), torch.randn(m, d, generator=gen, dtype=torch.float64)
    y = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    return x, xt, y


@pytest.mark.parametrize("duplicate", [False, True])
def test_closed_form_matches_integrated_ode(duplicate):
    x, xt, y = _data()
    if duplicate:  # repeated training points make the kernel singular; finite times must still work
        x, y = torch.cat([x, x[:2]]), torch.cat([y, y[:2]])
    k_train = mlp_kernels(x, depth=2, bias_std=0.2).ntk
    k_test = mlp_kernels(xt, x, depth=2, bias_std=0.2).ntk
    gen = torch.Generator().manual_seed(1)
    f0, f0t = torch.randn(y.shape, generator=gen, dtype=torch.float64), torch.randn(4, 2, generator=gen, dtype=torch.float64)
    for t in (0.0, 0.3, 2.0):
        f, g = _rk4(k_train, k_test, y, f0, f0t, t, eta=0.7, steps=2000)
        got_train = gradient_flow_mean(k_train, k_train, y, t, learning_rate=0.7, f0_train=f0, f0_test=f0)
        got_test = gradient_flow_mean(k_test, k_train, y, t, learning_rate=0.7, f0_train=f0, f0_test=f0t)
        torch.testing.assert_close(got_train, f, rtol=0, atol=1e-8)
        torch.testing.assert_close(got_test, g, rtol=0, atol=1e-8)


def test_infinite_time_interpolates_and_is_the_limit():
    x, xt, y = _data()
    k_train, k_test = mlp_kernels(x, depth=1).ntk, mlp_kernels(xt, x, depth=1).ntk
    torch.testing.assert_close(gradient_flow_mean(k_train, k_train, y), y, rtol=0, atol=1e-9)
    torch.testing.assert_close(gradient_flow_mean(k_test, k_train, y, 1e4),
                               gradient_flow_mean(k_test, k_train, y), rtol=0, atol=1e-8)
    # a ridge shrinks the fit towards zero: kernel ridge regression
    ridge = gradient_flow_mean(k_test, k_train, y, ridge=0.5)
    expected = k_test @ torch.linalg.solve(k_train + 0.5 * torch.eye(6, dtype=torch.float64), y)
    torch.testing.assert_close(ridge, expected, rtol=0, atol=1e-10)


def test_nngp_posterior_interpolates_with_zero_variance_at_the_data():
    x, xt, y = _data()
    k = mlp_kernels(torch.cat([x, xt]), depth=2, activation="erf").nngp
    mean, cov = nngp_posterior(k[:, :6], k[:6, :6], y, k, noise=0.0)
    torch.testing.assert_close(mean[:6], y, rtol=0, atol=1e-8)
    torch.testing.assert_close(cov[:6, :6], torch.zeros(6, 6, dtype=torch.float64), rtol=0, atol=1e-8)
    assert torch.linalg.eigvalsh((cov + cov.T) / 2).min() > -1e-8
    noisy, _ = nngp_posterior(k[6:, :6], k[:6, :6], y, noise=0.1)
    assert noisy.shape == (4, 2)


def test_wide_network_trained_by_gradient_descent_follows_the_kernel_prediction():
    x, xt, y = _data(n=8, m=5, seed=2)
    y = y[:, :1]
    kernel = dict(depth=2, bias_std=0.3)
    k_train, k_test = mlp_kernels(x, **kernel).ntk, mlp_kernels(xt, x, **kernel).ntk
    lr, steps = 0.05, 200
    gaps = []
    for width in (64, 2048):
        torch.manual_seed(5)
        net = NTKMLP(3, width, depth=2, bias_std=0.3).double()
        with torch.no_grad():
            f0, f0t = net(x), net(xt)
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            (0.5 * ((net(x) - y) ** 2).sum()).backward()
            opt.step()
        with torch.no_grad():
            pred = net(xt)
        mu = gradient_flow_mean(k_test, k_train, y, lr * steps, f0_train=f0, f0_test=f0t)
        gaps.append(((pred - mu).norm() / (mu - f0t).norm()).item())
    assert gaps[1] < 0.1 and gaps[1] < gaps[0] / 2, gaps


def test_bad_shapes_and_times_are_named():
    k = torch.eye(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="targets must have n = 3"):
        gradient_flow_mean(k, k, torch.zeros(2))
    with pytest.raises(ValueError, match="test kernel must be"):
        gradient_flow_mean(torch.zeros(2, 4), k, torch.zeros(3))
    with pytest.raises(ValueError, match="t must be a time"):
        gradient_flow_mean(k, k, torch.zeros(3), -1.0)
    with pytest.raises(ValueError, match="ridge"):
        gradient_flow_mean(k, k, torch.zeros(3), math.inf, ridge=-1.0)
