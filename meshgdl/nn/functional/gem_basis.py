r"""The analytic kernel basis of gauge-equivariant convolution (GEM, de Haan et al. 2020).

A kernel from frequency ``m`` to frequency ``n`` must satisfy, for every gauge angle ``p``,

.. math::
    K(\theta - p) = \rho_n(-p)\, K(\theta)\, \rho_m(p), \qquad \rho_k(a) = R(k a).

Writing a frequency-``k`` pair ``(u, v)`` as ``z = u + i v`` (so :math:`\rho_k(a) z = e^{ika} z`),
every real-linear map is :math:`z \mapsto \alpha z + \beta \bar z` and the constraint gives
:math:`\alpha \propto e^{i(n-m)\theta}`, :math:`\beta \propto e^{i(n+m)\theta}`. The real solutions:

=============  ===========================================================  =====
``m, n``       basis (complex form, ``x`` a scalar, ``w`` the output)        count
=============  ===========================================================  =====
``0, 0``       :math:`w = x`                                                 1
``0, n``       :math:`w = e^{in\theta} x,\ i e^{in\theta} x`                 2
``m, 0``       :math:`w = \mathrm{Re}(e^{-im\theta} z),\ \mathrm{Im}(e^{-im\theta} z)`   2
``m, n``       :math:`w = e^{i(n-m)\theta} z,\ i e^{i(n-m)\theta} z,\ e^{i(n+m)\theta} \bar z,\ i e^{i(n+m)\theta} \bar z`   4
=============  ===========================================================  =====

The count is :math:`d_n d_m`, the dimension of the solution space (``K(0)`` fixes ``K``), which
``tests/nn/test_gem_basis.py`` confirms by solving the constraint numerically. The
self-interaction has no direction, so only :math:`\theta`-independent solutions remain:
:math:`w = x` for ``m = n = 0``, :math:`w = z,\ i z` for ``m = n > 0``, nothing otherwise.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor


def _dim(k: int) -> int:
    return 1 if k == 0 else 2


def num_basis(m: int, n: int) -> int:
    """Number of kernel basis elements from frequency ``m`` to frequency ``n``."""
    return _dim(m) * _dim(n)


def num_self_basis(m: int, n: int) -> int:
    """Number of self-interaction basis elements from frequency ``m`` to ``n``."""
    if m != n:
        return 0
    return _dim(m)


def kernel_basis(m: int, n: int, theta: Tensor) -> Tensor:
    r"""The basis kernels at angles ``theta``: ``[T]`` -> ``[B, T, d_n, d_m]`` (``B = d_n d_m``)."""
    c = lambda k: torch.cos(k * theta)  # noqa: E731
    s = lambda k: torch.sin(k * theta)  # noqa: E731
    if m == 0 and n == 0:
        return torch.ones_like(theta)[None, :, None, None]
    if m == 0:  # columns e^{in theta}, i e^{in theta}
        return torch.stack([torch.stack([c(n), s(n)], -1), torch.stack([-s(n), c(n)], -1)])[..., None]
    if n == 0:  # rows of Re(e^{-im theta} z), Im(e^{-im theta} z)
        return torch.stack([torch.stack([c(m), s(m)], -1), torch.stack([-s(m), c(m)], -1)])[:, :, None, :]
    flip = torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=theta.dtype, device=theta.device)
    turn = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=theta.dtype, device=theta.device)
    a, b = _rot(c(n - m), s(n - m)), _rot(c(n + m), s(n + m))
    return torch.stack([a, turn @ a, b @ flip, turn @ b @ flip])


def self_basis(m: int, n: int, dtype=torch.float64) -> Tensor:
    """The self-interaction basis: ``[B, d_n, d_m]`` (empty when ``m != n``)."""
    if m != n:
        return torch.zeros(0, _dim(n), _dim(m), dtype=dtype)
    if m == 0:
        return torch.ones(1, 1, 1, dtype=dtype)
    return torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, -1.0], [1.0, 0.0]]], dtype=dtype)


def _rot(c: Tensor, s: Tensor) -> Tensor:
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def phases(m: int, max_out: int) -> list[int]:
    r"""Angular frequencies ``s`` at which the fast path aggregates :math:`e^{is\theta} z` for input ``m``."""
    if m == 0:
        return list(range(0, max_out + 1))
    return list(range(-(max_out + m), max_out - m + 1))


@lru_cache(maxsize=None)
def phase_coefficients(m: int, n: int, max_out: int) -> Tensor:
    r"""How each basis kernel reads the aggregated phases: ``[B, d_n, S, 2]`` float64.

    With :math:`A_s = \sum_j w_{ij} e^{is\theta_{ij}} z_j` (``z`` the transported input),
    output component ``x`` of basis element ``b`` is
    :math:`\sum_{s, t} c[b, x, s, t]\, (\mathrm{Re} A_s, \mathrm{Im} A_s)_t`.
    """
    ss = phases(m, max_out)
    out = torch.zeros(num_basis(m, n), _dim(n), len(ss), 2, dtype=torch.float64)
    if n == 0:
        s = ss.index(-m)
        out[0, 0, s, 0] = 1.0                 # Re(e^{-im theta} z)
        if m:
            out[1, 0, s, 1] = 1.0             # Im(e^{-im theta} z)
        return out
    s = ss.index(n - m)
    out[0, 0, s, 0], out[0, 1, s, 1] = 1.0, 1.0     # A
    out[1, 0, s, 1], out[1, 1, s, 0] = -1.0, 1.0    # i A
    if m:
        s = ss.index(-(n + m))                     # conj(A_{-(n+m)}) = sum e^{i(n+m) theta} conj(z)
        out[2, 0, s, 0], out[2, 1, s, 1] = 1.0, -1.0
        out[3, 0, s, 1], out[3, 1, s, 0] = 1.0, 1.0
    return out


def gaussian_radial(length: Tensor, num_radial: int, cutoff: float) -> Tensor:
    r"""Gaussian radial profiles of the edge lengths: ``[E]`` -> ``[E, R]``.

    Centres :math:`\mu_r` evenly spaced on ``[0, cutoff]`` with width equal to the spacing
    :math:`\Delta`, scaled by :math:`\pi^{-1/4}` so that :math:`\sum_r \phi_r^2 \approx 1` inside
    the cutoff: :math:`\phi_r(\ell) = \pi^{-1/4} \exp(-(\ell - \mu_r)^2 / (2 \Delta^2))`.
    """
    step = cutoff / max(num_radial - 1, 1)
    centres = torch.linspace(0.0, cutoff, num_radial, dtype=length.dtype, device=length.device)
    return math.pi ** -0.25 * torch.exp(-0.5 * ((length[:, None] - centres) / step) ** 2)
