r"""Group convolution between regular fields of the cyclic group :math:`C_N`."""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import Parameter

from .cyclic_field_type import CyclicFieldType
from ..gauge.gauge_message_passing import GaugeMessagePassing


class CNGroupConv(GaugeMessagePassing):
    r"""A :math:`C_N` group convolution with regular representations on a framed graph:

    .. math::
        y_{i, o, r} = \sum_j w_{ij} \sum_{c, t} \psi_{oct}(\theta_{ij} - 2\pi r / N)\,
        \tilde x_{j, c, t + r} + \sum_{c, t} \Theta_{oct}\, x_{i, c, t + r} + b_o,

    indices of orientations taken mod ``N``, :math:`\tilde x_j` the neighbour's field transported
    to i (a relabelling of orientations; transports must be multiples of :math:`2\pi / N`, as on a
    grid), :math:`\psi_{oct}` a Fourier series of bandwidth ``L`` in the angle and
    :math:`w_{ij} = 1/\deg i`. Turning a frame by :math:`2\pi q / N` relabels the input and the
    output orientations alike, so the layer is exactly equivariant under those gauges.

    Args:
        in_channels (int): input channels (each with ``N`` orientations).
        out_channels (int): output channels.
        order (int): :math:`N`.
        bandwidth (int): :math:`L` (default: ``4``)
        bias (bool): learn a bias per output channel (default: ``True``)

    Shapes:
        - input: :math:`[N_\text{nodes}, C_\text{in} N]`, output: :math:`[N_\text{nodes}, C_\text{out} N]`.
    """

    field_type = CyclicFieldType  # the group: a subclass with another field type is its group conv

    def __init__(self, in_channels: int, out_channels: int, order: int, bandwidth: int = 4, bias: bool = True):
        super().__init__(self.field_type(in_channels, order), self.field_type(out_channels, order), aggr="mean")
        self.in_channels, self.out_channels, self.order, self.bandwidth = in_channels, out_channels, order, bandwidth
        self.group_size = size = self.in_type.group_size
        self.weight = Parameter(torch.empty(out_channels, in_channels, size, 2 * bandwidth + 1))
        self.root = Parameter(torch.empty(out_channels, in_channels, size))
        self.bias = Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("_roll", self.in_type.product_table(), persistent=False)   # [h, g] -> h g
        self.reset_parameters()

    def reset_parameters(self):
        with torch.no_grad():
            fan = self.in_channels * self.group_size
            self.weight.normal_(0.0, math.sqrt(1.0 / (fan * (self.bandwidth + 1))))
            self.root.normal_(0.0, math.sqrt(0.5 / fan))
            if self.bias is not None:
                self.bias.zero_()

    def _rolled(self, x: Tensor) -> Tensor:
        """``[K, C G]`` -> ``[K, G(h), C, G(g)]`` with entry ``x[c, h g]`` (``(r + t) mod N`` for C_N)."""
        return x.unflatten(1, (self.in_channels, self.group_size))[:, :, self._roll].transpose(1, 2)

    def message(self, x_j: Tensor, edge_theta: Tensor, edge_length: Tensor, edge_weight: Tensor | None) -> Tensor:
        basis = self.in_type.angular_basis(edge_theta, self.bandwidth)             # [E, K, G]
        return (basis[:, :, :, None, None] * self._rolled(x_j)[:, None]).flatten(1)  # [E, K N C N]

    def update(self, aggr_out: Tensor, x: Tensor) -> Tensor:
        g = self.group_size
        agg = aggr_out.unflatten(1, (2 * self.bandwidth + 1, g, self.in_channels, g))
        out = torch.einsum("nkrct,octk->nor", agg, self.weight)
        out = out + torch.einsum("nrct,oct->nor", self._rolled(x), self.root)
        if self.bias is not None:
            out = out + self.bias[:, None]
        return out.flatten(1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, order={self.order})"
