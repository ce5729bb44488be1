r"""Pointwise nonlinearities on band-limited functions of the frame angle (GEM's RegularNonlinearity)."""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from ...field_type import FieldType


class RegularNonlinearity(torch.nn.Module):
    r"""Read each copy of frequencies ``0..K`` as a function on the circle, sample it at ``N``
    angles, apply ``fn`` pointwise and project back onto frequencies ``0..K``:

    .. math::
        f(\varphi) = a_0 + \sum_{k=1}^K a_k \cos k\varphi + b_k \sin k\varphi, \qquad
        f' = P_K\, \sigma\big(f(2\pi t / N)\big)_{t=0..N-1}.

    A gauge transformation by :math:`p` shifts :math:`f` by :math:`p`, so the layer is exactly
    equivariant when :math:`p` is a multiple of :math:`2\pi/N` and approximately otherwise. The
    relative error for ReLU on order ``K = 2`` (:func:`regular_nonlinearity_error`, mean over
    angles, Gaussian inputs) is 28 % at ``N = 5`` (the choice of the GEM paper), 6.3 % at
    ``N = 8``, 1.3 % at ``N = 16`` and 0.3 % at ``N = 32``; ``docs/nonlinearities.md`` has the table.

    Args:
        field_type (FieldType): ``FieldType.uniform(copies, K)``, equal copies of every frequency.
        fn (callable): the pointwise function (default: :func:`torch.relu`)
        num_samples (int): ``N``, at least ``2 K + 1`` (default: ``16``)

    Shapes:
        - input: :math:`[N_\text{nodes}, C]`, output: the same.
    """

    def __init__(self, field_type: FieldType, fn: Callable[[Tensor], Tensor] = torch.relu, num_samples: int = 16):
        super().__init__()
        mult = field_type.multiplicities
        if len(set(mult)) != 1:
            raise ValueError(f"RegularNonlinearity needs equal copies of every frequency (FieldType.uniform), got {field_type}")
        k = field_type.max_frequency
        if num_samples < 2 * k + 1:
            raise ValueError(f"num_samples must be at least 2 K + 1 = {2 * k + 1} to resolve frequency {k}, got {num_samples}")
        self.field_type, self.fn, self.num_samples = field_type, fn, num_samples
        sample = _sampling_matrix(k, num_samples)
        self.register_buffer("sample", sample, persistent=False)                       # [N, D]
        self.register_buffer("project", torch.linalg.pinv(sample), persistent=False)   # [D, N]
        # channel of coefficient d of copy c, so that x[:, order] is [copy, coefficient]
        copies, order = mult[0], []
        for c in range(copies):
            order.append(c)
            for freq in range(1, k + 1):
                start = copies + 2 * copies * (freq - 1) + 2 * c
                order += [start, start + 1]
        order = torch.tensor(order)
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("inverse", torch.argsort(order), persistent=False)

    def forward(self, x: Tensor, graph=None) -> Tensor:
        coeffs = x[:, self.order].unflatten(-1, (self.field_type.multiplicities[0], -1))
        values = self.fn(coeffs @ self.sample.to(x.dtype).T)
        return (values @ self.project.to(x.dtype).T).flatten(1)[:, self.inverse]

    def __repr__(self) -> str:
        return f"RegularNonlinearity({self.field_type}, num_samples={self.num_samples})"


def _sampling_matrix(max_frequency: int, num_samples: int) -> Tensor:
    phi = 2 * math.pi * torch.arange(num_samples, dtype=torch.float64) / num_samples
    cols = [torch.ones_like(phi)]
    for k in range(1, max_frequency + 1):
        cols += [torch.cos(k * phi), torch.sin(k * phi)]
    return torch.stack(cols, -1)


def regular_nonlinearity_error(max_frequency: int, num_samples: int, fn=torch.relu, num_angles: int = 64,
                               num_inputs: int = 4096, seed: int = 0) -> tuple[float, float]:
    r"""Measured equivariance error ``(mean, max)`` over ``num_angles`` gauge angles in
    :math:`[0, 2\pi)`: :math:`\|\sigma(\rho(-p) x) - \rho(-p)\sigma(x)\| / \|\sigma(x)\|` for
    standard Gaussian coefficients ``x`` (float64)."""
    field_type = FieldType.uniform(1, max_frequency)
    layer = RegularNonlinearity(field_type, fn, num_samples)
    x = torch.randn(num_inputs, field_type.dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    y = layer(x)
    errors = []
    for p in 2 * math.pi * torch.arange(num_angles, dtype=torch.float64) / num_angles:
        angles = p.expand(num_inputs)
        diff = layer(field_type.transform(x, angles)) - field_type.transform(y, angles)
        errors.append(float(diff.norm() / y.norm()))
    return sum(errors) / len(errors), max(errors)
