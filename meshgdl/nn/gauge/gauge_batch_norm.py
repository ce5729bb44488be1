r"""Batch normalisation that commutes with gauge transformations."""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import Parameter

from ...field_type import FieldType
from .._input import check_features, graph_num_nodes


class GaugeBatchNorm(torch.nn.Module):
    r"""Batch norm over the nodes of a batch, per channel:

    .. math::
        s' = \gamma \frac{s - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta, \qquad
        f' = \gamma_c \frac{f}{\sqrt{\langle |f|^2 \rangle / 2 + \epsilon}}

    for scalars :math:`s` and frequency-``k > 0`` pairs :math:`f`. Pairs are not centred (the mean
    of vectors in different frames means nothing) and get no bias; their statistic
    :math:`\langle |f|^2 \rangle` is gauge invariant. Running statistics are kept for evaluation
    as in :class:`torch.nn.BatchNorm1d`.

    Args:
        field_type (FieldType): the field type of input and output.
        eps (float): added to the variances (default: ``1e-5``)
        momentum (float): weight of the current batch in the running statistics (default: ``0.1``)
        affine (bool): learn :math:`\gamma` (and :math:`\beta` for scalars) (default: ``True``)

    Shapes:
        - input: :math:`[N, C]` (and optionally the graph, whose node count is then checked),
          output: the same. An empty batch (:math:`N = 0`) leaves the running statistics unchanged.
    """

    def __init__(self, field_type: FieldType, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True):
        super().__init__()
        self.field_type, self.eps, self.momentum = field_type, eps, momentum
        self.num_scalars = field_type.multiplicities[0]
        self.num_pairs = (field_type.dim - self.num_scalars) // 2
        self.register_buffer("running_mean", torch.zeros(self.num_scalars))
        self.register_buffer("running_var", torch.ones(self.num_scalars + self.num_pairs))
        self.weight = Parameter(torch.ones(self.num_scalars + self.num_pairs)) if affine else None
        self.bias = Parameter(torch.zeros(self.num_scalars)) if affine else None

    def forward(self, x: Tensor, graph=None) -> Tensor:
        check_features(self, x, self.field_type, None if graph is None else graph_num_nodes(graph))
        s = self.num_scalars
        scalars, pairs = x[:, :s], x[:, s:].unflatten(-1, (-1, 2))
        if self.training and x.shape[0] > 0:
            mean = scalars.mean(0)
            var = torch.cat([(scalars - mean).square().mean(0), pairs.square().sum(-1).mean(0) / 2])
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
                self.running_var.lerp_(var.detach().to(self.running_var.dtype), self.momentum)
        else:
            mean, var = self.running_mean.to(x.dtype), self.running_var.to(x.dtype)
        scale = (var + self.eps).rsqrt()
        if self.weight is not None:
            scale = scale * self.weight
        scalars = (scalars - mean) * scale[:s]
        if self.bias is not None:
            scalars = scalars + self.bias
        return torch.cat([scalars, (pairs * scale[s:, None]).flatten(1)], -1)

    def __repr__(self) -> str:
        return f"GaugeBatchNorm({self.field_type})"
