r"""Gauge-equivariant activation for matrix features: a gate by an invariant (L-Act of the L-CNN)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


class LatticeActivation(torch.nn.Module):
    r"""Each matrix feature times a scalar nonlinearity of its own trace, from
    `Favoni et al. (PRL 128, 032003, 2022) <https://arxiv.org/abs/2012.12901>`_.

    .. math::
        F'_{x,c} = \sigma\Big(a_c \tfrac1n \mathrm{Re\,tr}\, F_{x,c} + b_c\Big)\, F_{x,c}.

    The gate is gauge invariant (the trace is), so :math:`F' \to \Omega_x F' \Omega_x^\dagger`.
    With ``channels=None`` the gate is :math:`\sigma(\frac1n \mathrm{Re\,tr}\, F)` (ReLU by default,
    as in the L-CNN); with ``channels`` it learns :math:`a_c` (initially 1) and :math:`b_c`
    (initially 0).

    Args:
        channels (int, optional): learn a scale and a shift per channel. (default: ``None``)
        activation (callable): the scalar nonlinearity :math:`\sigma`.
            (default: :func:`torch.relu`)

    Shapes:
        - input: :math:`[N, C, n, n]` complex
        - output: :math:`[N, C, n, n]`
    """

    def __init__(self, channels: int | None = None, activation: Callable[[Tensor], Tensor] = torch.relu):
        super().__init__()
        self.channels, self.activation = channels, activation
        if channels is not None:
            self.scale = torch.nn.Parameter(torch.ones(channels))
            self.shift = torch.nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        if not x.is_complex() or x.dim() != 4:
            raise ValueError(f"{type(self).__name__} expects complex matrix features [N, C, n, n], got {x.dtype} {list(x.shape)}")
        trace = torch.diagonal(x, dim1=-2, dim2=-1).sum(-1).real / x.shape[-1]
        if self.channels is not None:
            if x.shape[1] != self.channels:
                raise ValueError(f"{type(self).__name__} was built for {self.channels} channels, got {x.shape[1]}")
            trace = self.scale.to(trace.dtype) * trace + self.shift.to(trace.dtype)
        return self.activation(trace)[..., None, None] * x

    def extra_repr(self) -> str:
        name = getattr(self.activation, "__name__", repr(self.activation))
        return f"channels={self.channels}, activation={name}"
