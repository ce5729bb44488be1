r"""Gauge-invariant readout of matrix features: traces, then a linear map."""
from __future__ import annotations

import torch
from torch import Tensor


class TraceReadout(torch.nn.Module):
    r"""Invariant scalars from matrix features: the real and imaginary parts of the normalised
    traces, optionally followed by a linear layer.

    .. math::
        s_x = \Big(\tfrac1n \mathrm{Re\,tr}\, F_{x,c},\ \tfrac1n \mathrm{Im\,tr}\, F_{x,c}\Big)_{c},
        \qquad y_x = W s_x + b.

    The trace is invariant under :math:`F \to \Omega F \Omega^\dagger`, so :math:`y` is too.

    Args:
        in_channels (int): matrix channels :math:`C`.
        out_channels (int, optional): outputs of the linear layer; ``None`` returns :math:`s`
            (:math:`2C` values, real parts first). (default: ``None``)
        bias (bool): learn the offset :math:`b`. (default: ``True``)

    Shapes:
        - input: :math:`[N, C, n, n]` complex
        - output: :math:`[N, C_{out}]` real (:math:`[N, 2C]` without ``out_channels``)
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, bias: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.linear = None if out_channels is None else torch.nn.Linear(2 * in_channels, out_channels, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        if not x.is_complex() or x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects complex features [N, {self.in_channels}, n, n], "
                             f"got {x.dtype} {list(x.shape)}")
        trace = torch.diagonal(x, dim1=-2, dim2=-1).sum(-1) / x.shape[-1]
        s = torch.cat([trace.real, trace.imag], dim=-1)
        if self.linear is None:
            return s
        return self.linear(s.to(self.linear.weight.dtype))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}"
