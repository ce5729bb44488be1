r"""Global pooling of gauge-invariant features: one row per graph."""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.utils import scatter

from ...field_type import FieldType
from .._input import check_features, graph_num_nodes


class GlobalInvariantPool(torch.nn.Module):
    r"""Pool the invariant part of a field over each graph of a batch:

    .. math::
        \mathbf{y}_b = \operatorname{reduce}_{i \in b}\,
        \big(s_i,\ |f_{i,1}|,\ \dots,\ |f_{i,P}|\big)

    the scalars and the norm of every frequency-``k > 0`` pair. The result does not change under
    node permutations, gauge transformations or rotations of the embedding.

    Args:
        field_type (FieldType): the input field type.
        reduce (str): ``"mean"``, ``"sum"`` or ``"max"`` (default: ``"mean"``)
        eps (float): added under the square root of the norms (default: ``1e-12``)

    Shapes:
        - input: :math:`[N, C]` and a graph (with ``batch`` for a PyG ``Batch``)
        - output: :math:`[B, m_0 + P]`; a graph without nodes pools to zeros
    """

    def __init__(self, field_type: FieldType, reduce: str = "mean", eps: float = 1e-12):
        super().__init__()
        if reduce not in ("mean", "sum", "max"):
            raise ValueError(f"reduce must be 'mean', 'sum' or 'max', got {reduce!r}")
        self.field_type, self.reduce, self.eps = field_type, reduce, eps
        self.num_scalars = field_type.multiplicities[0]
        self.out_channels = self.num_scalars + (field_type.dim - self.num_scalars) // 2

    def invariants(self, x: Tensor) -> Tensor:
        """``[N, C]`` -> ``[N, m_0 + P]``: scalars and pair norms."""
        pairs = x[:, self.num_scalars:].unflatten(-1, (-1, 2))
        return torch.cat([x[:, :self.num_scalars], (pairs.square().sum(-1) + self.eps).sqrt()], -1)

    def forward(self, x: Tensor, graph=None) -> Tensor:
        check_features(self, x, self.field_type, None if graph is None else graph_num_nodes(graph))
        batch = graph.batch if graph is not None and "batch" in graph and graph.batch is not None else None
        inv = self.invariants(x)
        if x.shape[0] == 0:
            # PyG's scatter gives zero for a graph without nodes; one unbatched graph gets the same
            return inv.new_zeros(1 if batch is None else graph.num_graphs, self.out_channels)
        if batch is None:
            return getattr(inv, "amax" if self.reduce == "max" else self.reduce)(0, keepdim=True)
        return scatter(inv, batch, dim=0, dim_size=graph.num_graphs, reduce=self.reduce)

    def __repr__(self) -> str:
        return f"GlobalInvariantPool({self.field_type}, reduce={self.reduce!r})"
