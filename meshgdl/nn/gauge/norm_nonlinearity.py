r"""Nonlinearities that act on the norm of each frequency pair (exactly gauge equivariant)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from torch.nn import Parameter

from ...field_type import FieldType


class NormNonlinearity(torch.nn.Module):
    r"""Scalars go through ``fn``; every frequency-``k > 0`` pair keeps its direction and has its
    norm passed through ``fn`` with a learned bias:

    .. math::
        s' = \sigma(s), \qquad f' = \frac{\sigma(|f| + b)}{|f|}\, f.

    Exactly gauge equivariant: :math:`|f|` does not change when the frame turns.

    Args:
        field_type (FieldType): the field type of input and output.
        fn (callable): the function of scalars and norms (default: :func:`torch.relu`)
        eps (float): added to :math:`|f|^2` before the square root, so gradients stay finite at
            zero (default: ``1e-12``)

    Shapes:
        - input: :math:`[N, C]`, output: the same.
    """

    def __init__(self, field_type: FieldType, fn: Callable[[Tensor], Tensor] = torch.relu, eps: float = 1e-12):
        super().__init__()
        self.field_type, self.fn, self.eps = field_type, fn, eps
        self.num_scalars = field_type.multiplicities[0]
        self.num_pairs = (field_type.dim - self.num_scalars) // 2
        self.bias = Parameter(torch.zeros(self.num_pairs))

    def forward(self, x: Tensor, graph=None) -> Tensor:
        scalars = self.fn(x[:, :self.num_scalars])
        pairs = x[:, self.num_scalars:].unflatten(-1, (-1, 2))
        norm = (pairs.square().sum(-1) + self.eps).sqrt()
        scale = self.fn(norm + self.bias) / norm
        return torch.cat([scalars, (pairs * scale[..., None]).flatten(1)], -1)

    def __repr__(self) -> str:
        return f"NormNonlinearity({self.field_type})"
