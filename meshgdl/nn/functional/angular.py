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
