r"""Layer normalisation that commutes with gauge transformations."""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import Parameter

from ...field_type import FieldType
from .._input import check_features, graph_num_nodes


class GaugeLayerNorm(torch.nn.Module):
    r"""Normalise each node's features by one invariant scale:

    .. math::
        \bar s = s - \operatorname{mean}(s), \qquad
        \nu = \frac{1}{C}\Big(\sum \bar s^2 + \sum_c |f_c|^2\Big), \qquad
        x' = \gamma \odot x / \sqrt{\nu + \epsilon} + \beta,

    where scalars are centred across the scalar channels, pairs are not centred, :math:`\gamma` is
    one weight per scalar and per pair, and :math:`\beta` sits on scalars only.

    Args:
        field_type (FieldType): the field type of input and output.
        eps (float): added to :math:`\nu` (default: ``1e-5``)
        affine (bool): learn :math:`\gamma` and :math:`\beta` (default: ``True``)

    Shapes:
        - input: :math:`[N, C]` (and optionally the graph, whose node count is then checked),
          output: the same.
    """

    def __init__(self, field_type: FieldType, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        self.field_type, self.eps = field_type, eps
        self.num_scalars = field_type.multiplicities[0]
        self.num_pairs = (field_type.dim - self.num_scalars) // 2
        self.weight = Parameter(torch.ones(self.num_scalars + self.num_pairs)) if affine else None
        self.bias = Parameter(torch.zeros(self.num_scalars)) if affine else None

    def forward(self, x: Tensor, graph=None) -> Tensor:
        check_features(self, x, self.field_type, None if graph is None else graph_num_nodes(graph))
        s = self.num_scalars
        scalars, pairs = x[:, :s], x[:, s:].unflatten(-1, (-1, 2))
        if s:
            scalars = scalars - scalars.mean(-1, keepdim=True)
        power = (scalars.square().sum(-1) + pairs.square().sum((-1, -2))) / x.shape[-1]
        inv = (power + self.eps).rsqrt()[:, None]
        scalars, pairs = scalars * inv, pairs * inv[..., None]
        if self.weight is not None:
            scalars = scalars * self.weight[:s] + self.bias
            pairs = pairs * self.weight[s:, None]
        return torch.cat([scalars, pairs.flatten(1)], -1)

    def __repr__(self) -> str:
        return f"GaugeLayerNorm({self.field_type})"
