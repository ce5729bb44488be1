"""Angular Fourier bases of kernels on the log-map angle, shared by the group convolutions."""
from __future__ import annotations

import math

import torch
from torch import Tensor


def rotated_angular_basis(theta: Tensor, bandwidth: int, order: int) -> Tensor:
    r"""``[E]`` -> ``[E, 2 L + 1, N]``: :math:`(1, \cos k\phi, \sin k\phi)_{k \le L}` at
    :math:`\phi = \theta - 2\pi r / N`, the kernel turned to each of the ``N`` orientations."""
    r = torch.arange(order, dtype=theta.dtype, device=theta.device) * (2 * math.pi / order)
    phi = theta[:, None] - r                                            # [E, N]
    rows = [torch.ones_like(phi)]
    for k in range(1, bandwidth + 1):
        rows += [torch.cos(k * phi), torch.sin(k * phi)]
    return torch.stack(rows, 1)


def reflected_angular_basis(theta: Tensor, bandwidth: int, order: int) -> Tensor:
    r"""``[E]`` -> ``[E, 2 L + 1, 2 N]``: the basis at :math:`h^{-1}\theta` for the ``2 N`` elements
    :math:`h = \rho^r \mu^s` of :math:`D_N` (index ``s N + r``), where :math:`\rho^r` turns by
    :math:`2\pi r / N` and :math:`\mu` reflects across e1: :math:`h^{-1}\theta = (-1)^s (\theta -
    2\pi r / N)`, so the reflected half is the rotated one with its sines negated."""
    rotated = rotated_angular_basis(theta, bandwidth, order)
    sign = torch.ones(2 * bandwidth + 1, 1, dtype=theta.dtype, device=theta.device)
    sign[2::2] = -1
    return torch.cat([rotated, rotated * sign], 2)
