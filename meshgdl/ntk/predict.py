r"""Predictions of kernel gradient flow under the squared loss, and the NNGP posterior.

Gradient flow on :math:`\tfrac12 \sum_a \lVert f(x_a) - y_a \rVert^2` with learning rate
:math:`\eta` moves a linearised network (or the mean of an infinite ensemble, where :math:`f_0 = 0`)
as :math:`\dot f = -\eta\, \Theta(X, X) (f(X) - Y)`, so that

.. math::
    \mu_t(x) = f_0(x) + \Theta(x, X)\, \Theta(X, X)^{-1} \big(I - e^{-\eta \Theta(X, X) t}\big)
    \big(Y - f_0(X)\big).

With :math:`\Theta(X, X) = V \operatorname{diag}(\lambda) V^\top`, the middle factor is
:math:`V \operatorname{diag}\big((1 - e^{-\eta\lambda t})/\lambda\big) V^\top`, evaluated with
``expm1`` and by its limit :math:`\eta t` where :math:`\lambda` vanishes, so that it is finite for a
singular kernel at every finite :math:`t` (the kernel of a full group orbit often is).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def _check_kernels(k_train: Tensor, k_test: Tensor, y: Tensor):
    n = k_train.shape[0]
    if k_train.dim() != 2 or k_train.shape != (n, n):
        raise ValueError(f"the training kernel must be square [n, n], got {tuple(k_train.shape)}")
    if k_test.dim() != 2 or k_test.shape[1] != n:
        raise ValueError(f"the test kernel must be [m, n] with n = {n} training points, got {tuple(k_test.shape)}")
    if y.shape[0] != n:
        raise ValueError(f"the targets must have n = {n} rows (one per training point), got {tuple(y.shape)}")


def _eig(k_train: Tensor, ridge: float):
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")
    sym = (k_train + k_train.T) / 2 + ridge * torch.eye(k_train.shape[0], dtype=k_train.dtype, device=k_train.device)
    return torch.linalg.eigh(sym)


def gradient_flow_mean(k_test_train: Tensor, k_train_train: Tensor, y_train: Tensor, t: float = math.inf, *,
                       learning_rate: float = 1.0, ridge: float = 0.0, f0_train: Tensor | None = None,
                       f0_test: Tensor | None = None) -> Tensor:
    r"""The mean prediction :math:`\mu_t(x)` of kernel gradient flow (see the module docstring).

    Args:
        k_test_train (Tensor): :math:`\Theta(x, X)`, :math:`[m, n]`.
        k_train_train (Tensor): :math:`\Theta(X, X)`, :math:`[n, n]` (symmetrised).
        y_train (Tensor): targets :math:`[n]` or :math:`[n, O]` (the kernel acts as the identity
            across outputs).
        t (float): training time; ``math.inf`` for the converged prediction
            :math:`\Theta(x, X)(\Theta(X, X) + \text{ridge})^{-1} Y`. (default: ``inf``)
        learning_rate (float): :math:`\eta`. (default: ``1.0``)
        ridge (float): added to the diagonal of :math:`\Theta(X, X)`; needed at ``t = inf`` when the
            kernel is singular (directions with :math:`\lambda = 0` are then dropped). (default: ``0.0``)
        f0_train, f0_test (Tensor, optional): the outputs at initialisation (shaped as ``y_train``
            and the prediction); ``None`` for zero, the mean of an infinite ensemble. (default: ``None``)

    Shapes:
        - output: :math:`[m]` or :math:`[m, O]`, as ``y_train``.
    """
    _check_kernels(k_train_train, k_test_train, y_train)
    if not t >= 0:
        raise ValueError(f"t must be a time >= 0 (or math.inf), got {t}")
    residual = y_train if f0_train is None else y_train - f0_train
    lam, vec = _eig(k_train_train, ridge)
    if math.isinf(t):
        keep = lam > lam.abs().max() * k_train_train.shape[0] * torch.finfo(lam.dtype).eps
        factor = torch.where(keep, 1 / torch.where(keep, lam, 1.0), 0.0)
    else:
        rate = learning_rate * t
        small = lam.abs() * rate < 1e-12
        factor = torch.where(small, rate, -torch.expm1(-rate * lam) / torch.where(small, 1.0, lam))
    coef = vec @ (factor[:, None] * (vec.T @ residual.reshape(residual.shape[0], -1)))
    out = (k_test_train @ coef).reshape((k_test_train.shape[0],) + y_train.shape[1:])
    return out if f0_test is None else out + f0_test


def nngp_posterior(k_test_train: Tensor, k_train_train: Tensor, y_train: Tensor, k_test_test: Tensor | None = None,
                   *, noise: float = 0.0) -> tuple[Tensor, Tensor | None]:
    r"""The Gaussian-process posterior of the NNGP kernel :math:`K`, observation noise :math:`\sigma^2`:

    .. math::
        m(x) = K(x, X)(K(X, X) + \sigma^2 I)^{-1} Y, \qquad
        C(x, x') = K(x, x') - K(x, X)(K(X, X) + \sigma^2 I)^{-1} K(X, x').

    Args:
        k_test_train (Tensor): :math:`[m, n]`; k_train_train (Tensor): :math:`[n, n]`;
        y_train (Tensor): :math:`[n]` or :math:`[n, O]`.
        k_test_test (Tensor, optional): :math:`[m, m]`, for the covariance. (default: ``None``)
        noise (float): :math:`\sigma^2`, a ridge. (default: ``0.0``)

    Shapes:
        - output: ``(mean, cov)``: mean as ``y_train`` with :math:`m` rows, cov :math:`[m, m]` or ``None``.
    """
    _check_kernels(k_train_train, k_test_train, y_train)
    lam, vec = _eig(k_train_train, noise)
    keep = lam > lam.abs().max() * k_train_train.shape[0] * torch.finfo(lam.dtype).eps
    inv = torch.where(keep, 1 / torch.where(keep, lam, 1.0), 0.0)
    proj = (k_test_train @ vec) * inv  # K(x, X) V diag(1/lambda)
    mean = (proj @ (vec.T @ y_train.reshape(y_train.shape[0], -1))).reshape((k_test_train.shape[0],) + y_train.shape[1:])
    cov = None if k_test_test is None else k_test_test - proj @ (vec.T @ k_test_train.T)
    return mean, cov
