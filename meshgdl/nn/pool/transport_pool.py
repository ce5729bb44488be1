r"""Hierarchical pooling and unpooling that transport features into the receiving frame."""
from __future__ import annotations

from torch import Tensor

from ...field_type import FieldType
from ..gauge.gauge_message_passing import GaugeMessagePassing


class TransportPool(GaugeMessagePassing):
    r"""Average the features arriving along the edges of a pooling graph, each transported into
    the receiver's frame first:

    .. math::
        y_c = \frac{1}{|\mathcal{N}(c)|} \sum_{j \in \mathcal{N}(c)} \rho(a_{jc}) f_j.

    With the ``pool`` graph of :func:`~meshgdl.nn.pool.coarsen.coarsen` (every node to its cluster
    centre) it pools clusters into the centres' frames; with the ``unpool`` graph (centre to every
    member) it copies each centre's features back into the members' frames. The output has one
    row per fine node (zero where nothing arrives); ``y[coarsening.centres]`` are the coarse
    features. Equivariant like any gauge message passing: a frequency-``k`` feature is never
    averaged across different frames.

    Args:
        field_type (FieldType): the field type of input and output.
        reduce (str): PyG aggregation, ``"mean"``, ``"max"`` (scalars only) or ``"sum"`` (default: ``"mean"``)

    Shapes:
        - input: :math:`[N, C]` or :math:`[B, N, C]` (B samples on one graph) and the pooling
          graph on the same :math:`N` nodes
        - output: :math:`[N, C]` or :math:`[B, N, C]`
    """

    def __init__(self, field_type: FieldType, reduce: str = "mean"):
        super().__init__(field_type, field_type, aggr=reduce)

    def forward(self, x: Tensor, graph) -> Tensor:
        self._check_input(x, graph, batched=True)
        if x.dim() == 2:
            return super().forward(x, graph)
        j, i = graph.edge_index
        x_j = self.transport(x.index_select(1, j), graph.edge_transport)  # [B, E, C]
        # the samples side by side as channels: one aggregation of [E, B C]
        out = self.aggregate(x_j.transpose(0, 1).flatten(1), i, dim_size=x.shape[1])
        return out.unflatten(1, (x.shape[0], -1)).transpose(0, 1)

    def message(self, x_j: Tensor, edge_theta: Tensor, edge_length: Tensor, edge_weight: Tensor | None) -> Tensor:
        return x_j

    def __repr__(self) -> str:
        return f"TransportPool({self.in_type})"
