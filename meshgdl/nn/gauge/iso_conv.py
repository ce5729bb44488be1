r"""The isotropic, gauge-invariant baseline: scalar features and edge lengths only."""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import Linear, Parameter

from ...field_type import FieldType
from ..functional.fused import iso_aggregate
from ..functional.gem_basis import gaussian_radial
from .gauge_message_passing import GaugeMessagePassing


class IsoConv(GaugeMessagePassing):
    r"""Isotropic convolution: messages see scalar features and edge lengths, never directions,

    .. math::
        \mathbf{x}'_i = \Theta \mathbf{x}_i + \sum_{j \in \mathcal{N}(i)} w_{ij}
        \sum_r \phi_r(\ell_{ij})\, W_r \mathbf{x}_j + \mathbf{b},

    with the Gaussian radial profiles :math:`\phi_r` of :func:`~meshgdl.nn.functional.gem_basis.gaussian_radial`
    (a single constant profile when ``num_radial = 0``) and
    :math:`w_{ij} = (\text{edge\_weight}_{ij} \text{ or } 1) / \deg(i)`. Invariant under every gauge
    transformation, so it cannot tell directions apart: the baseline that GEM improves on (it is
    GemConv restricted to scalars, with a radial profile in place of the angular basis).

    Args:
        in_channels (int): input scalars.
        out_channels (int): output scalars.
        num_radial (int): number of radial profiles; ``0`` for none (default: ``0``)
        cutoff (float, optional): the largest profile centre; required when ``num_radial > 0``.
        use_edge_weight (bool): multiply messages by ``graph.edge_weight`` (default: ``False``)
        normalize (bool): divide the sum over neighbours by the in-degree (default: ``True``)
        bias (bool): learn a bias (default: ``True``)
        fused (bool): aggregate the neighbours' features with a cached sparse operator before the
            weights (:mod:`meshgdl.nn.functional.fused`); also takes :math:`[B, N, C]` features
            over one shared graph, and compiles with ``torch.compile(fullgraph=True)``. ``False``
            runs PyG message passing. (default: ``True``)

    Shapes:
        - input: ``x`` :math:`[N, C_\text{in}]` (or :math:`[B, N, C_\text{in}]` on the fused
          path), :math:`N` = ``graph.num_nodes``, checked first; ``graph`` with ``edge_index`` and
          ``edge_logmap``. :math:`E = 0` and :math:`N = 0` are allowed.
        - output: :math:`[N, C_\text{out}]` (or :math:`[B, N, C_\text{out}]`)

    Dtypes:
        as :class:`~meshgdl.nn.GemConv`: float64, float32, float16, bfloat16 and
        ``torch.autocast``; half-precision sparse products run in float32.
    """

    def __init__(self, in_channels: int, out_channels: int, num_radial: int = 0, cutoff: float | None = None,
                 use_edge_weight: bool = False, normalize: bool = True, bias: bool = True, fused: bool = True):
        super().__init__(FieldType.scalars(in_channels), FieldType.scalars(out_channels),
                         aggr="mean" if normalize else "add")
        if num_radial < 0 or (num_radial > 0 and (cutoff is None or not cutoff > 0)):
            raise ValueError("num_radial > 0 needs a positive cutoff (the largest edge length to resolve), "
                             f"got num_radial={num_radial}, cutoff={cutoff}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_radial, self.cutoff, self.use_edge_weight = num_radial, cutoff, use_edge_weight
        self.normalize, self.fused = normalize, fused
        self.weight = Parameter(torch.empty(max(num_radial, 1), in_channels, out_channels))
        self.root = Linear(in_channels, out_channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self):
        """Neighbour and self terms each carry half the output variance for unit-variance input."""
        with torch.no_grad():
            self.weight.normal_(0.0, math.sqrt(0.5 / self.in_channels))
            self.root.weight.normal_(0.0, math.sqrt(0.5 / self.in_channels))
            if self.root.bias is not None:
                self.root.bias.zero_()

    def forward(self, x: Tensor, graph) -> Tensor:
        if self.fused and type(self).message is IsoConv.message:
            self._check_input(x, graph, batched=True)
            return iso_aggregate(self, x, graph) + self.root(x)
        return super().forward(x, graph)

    def transport(self, x_j: Tensor, edge_transport: Tensor) -> Tensor:
        return x_j  # scalars do not change under transport

    def message(self, x_j: Tensor, edge_theta: Tensor, edge_length: Tensor, edge_weight: Tensor | None) -> Tensor:
        if self.num_radial:
            phi = gaussian_radial(edge_length, self.num_radial, self.cutoff)
            msg = torch.einsum("er,ec,rco->eo", phi, x_j, self.weight)
        else:
            msg = x_j @ self.weight[0]
        if self.use_edge_weight:
            if edge_weight is None:
                raise ValueError("IsoConv(use_edge_weight=True) needs graph.edge_weight; the graph has none")
            msg = msg * edge_weight[:, None]
        return msg

    def update(self, aggr_out: Tensor, x: Tensor) -> Tensor:
        return aggr_out + self.root(x)

    def __repr__(self) -> str:
        return f"IsoConv({self.in_channels}, {self.out_channels})"
