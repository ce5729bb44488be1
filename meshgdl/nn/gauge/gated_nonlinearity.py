r"""Gated nonlinearity: scalar gates scale the higher-frequency pairs (exactly gauge equivariant)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ...field_type import FieldType


class GatedNonlinearity(torch.nn.Module):
    r"""The gated nonlinearity of `Weiler et al. (2018) <https://arxiv.org/abs/1807.02547>`_:

    .. math::
        s' = \sigma(s), \qquad f'_c = \mathrm{sigmoid}(g_c)\, f_c,

    for every frequency-``k > 0`` pair :math:`f_c`, with one invariant gate :math:`g_c` each. The
    input holds the output's scalars, then one gate per pair as extra scalars, then the pairs:
    ``in_type = FieldType([m_0 + G, m_1, ..., m_K])`` with :math:`G = \sum_{k>0} m_k`
    (:meth:`input_type` builds it). Gates are consumed, so the output is ``out_type``.

    Args:
        out_type (FieldType): the output field type.
        fn (callable): the function of the scalars (default: :func:`torch.relu`)
        gate (callable): the function of the gates (default: :func:`torch.sigmoid`)

    Shapes:
        - input: :math:`[N, C_\text{in}]` of :meth:`input_type`, output: :math:`[N, C_\text{out}]`.
    """

    def __init__(self, out_type: FieldType, fn: Callable[[Tensor], Tensor] = torch.relu,
                 gate: Callable[[Tensor], Tensor] = torch.sigmoid):
        super().__init__()
        self.out_type, self.fn, self.gate = out_type, fn, gate
        self.in_type = self.input_type(out_type)
        self.num_scalars = out_type.multiplicities[0]
        self.num_gates = sum(out_type.multiplicities[1:])

    @staticmethod
    def input_type(out_type: FieldType) -> FieldType:
        """``out_type`` with one extra scalar (the gate) for every pair."""
        mult = list(out_type.multiplicities)
        return FieldType([mult[0] + sum(mult[1:])] + mult[1:])

    def forward(self, x: Tensor, graph=None) -> Tensor:
        s, g = self.num_scalars, self.num_gates
        gates = self.gate(x[:, s:s + g])
        pairs = x[:, s + g:].unflatten(-1, (-1, 2)) * gates[..., None]
        return torch.cat([self.fn(x[:, :s]), pairs.flatten(1)], -1)

    def __repr__(self) -> str:
        return f"GatedNonlinearity({self.out_type})"
