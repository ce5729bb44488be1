r"""Lifting convolution: scalar fields to regular fields of the cyclic group :math:`C_N`."""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import Parameter

from ...field_type import FieldType
from .cyclic_field_type import CyclicFieldType
from ..gauge.gauge_message_passing import GaugeMessagePassing


class CNLiftingConv(GaugeMessagePassing):
    r"""The lifting layer of a :math:`C_N` group CNN (`Cohen & Welling 2016
    <https://arxiv.org/abs/1602.07576>`_) on a framed graph: one filter, turned to ``N``
    orientations,

    .. math::
        y_{i, o, r} = \sum_j w_{ij} \sum_c \psi_{oc}(\theta_{ij} - 2\pi r / N)\, x_{j, c}
        + \sum_c \Theta_{oc} x_{i, c} + b_o,

    with :math:`\psi_{oc}(\phi) = \sum_{k \le L} a_{ock} \cos k\phi + b_{ock} \sin k\phi`
    (``L = 4`` resolves all eight directions of a 3 x 3 stencil) and
    :math:`w_{ij} = 1 / \deg i`. The output is a
    :class:`~meshgdl.nn.group.cyclic_field_type.CyclicFieldType`: turning the frame by
    :math:`2\pi q / N` relabels the orientations, which makes the layer exactly equivariant to the
    rotations of a grid by multiples of :math:`2\pi / N` that map the grid onto itself.

    Args:
        in_channels (int): input scalars.
        out_channels (int): output channels (each with ``N`` orientations).
        order (int): :math:`N`.
        bandwidth (int): :math:`L`, the highest angular frequency of the filter (default: ``4``)
        bias (bool): learn a bias per output channel, shared by its orientations (default: ``True``)

    Shapes:
        - input: :math:`[N_\text{nodes}, C_\text{in}]`, output: :math:`[N_\text{nodes}, C_\text{out} N]`.
    """

    field_type = CyclicFieldType  # the group: a subclass with another field type lifts to it

    def __init__(self, in_channels: int, out_channels: int, order: int, bandwidth: int = 4, bias: bool = True):
        super().__init__(FieldType.scalars(in_channels), self.field_type(out_channels, order), aggr="mean")
        self.in_channels, self.out_channels, self.order, self.bandwidth = in_channels, out_channels, order, bandwidth
        self.group_size = self.out_type.group_size
        self.weight = Parameter(torch.empty(out_channels, in_channels, 2 * bandwidth + 1))
        self.root = Parameter(torch.empty(out_channels, in_channels))
        self.bias = Parameter(torch.zeros(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        with torch.no_grad():
            self.weight.normal_(0.0, math.sqrt(1.0 / (self.in_channels * (self.bandwidth + 1))))
            self.root.normal_(0.0, math.sqrt(0.5 / self.in_channels))
            if self.bias is not None:
                self.bias.zero_()

    def message(self, x_j: Tensor, edge_theta: Tensor, edge_length: Tensor, edge_weight: Tensor | None) -> Tensor:
        basis = self.out_type.angular_basis(edge_theta, self.bandwidth)            # [E, K, G]
        return (basis[:, :, :, None] * x_j[:, None, None, :]).flatten(1)           # [E, K G C]

    def update(self, aggr_out: Tensor, x: Tensor) -> Tensor:
        agg = aggr_out.unflatten(1, (2 * self.bandwidth + 1, self.group_size, self.in_channels))
        out = torch.einsum("nkrc,ock->nor", agg, self.weight) + (x @ self.root.T)[:, :, None]
        if self.bias is not None:
            out = out + self.bias[:, None]
        return out.flatten(1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, order={self.order})"
