r"""The base class of every gauge-equivariant layer: transport first, then message passing."""
from __future__ import annotations

import inspect

import torch
from torch import Tensor
from torch_geometric.nn import MessagePassing

from ... import ops
from ...field_type import FieldType
from .._input import check_features, graph_num_nodes


class GaugeMessagePassing(MessagePassing):
    r"""Message passing in which a neighbour's features arrive in the receiver's frame.

    For every edge :math:`j \to i` the base class transports the neighbour's features,
    :math:`\tilde f_j = \rho_\text{in}(a_{ji}) f_j`, computes the angle of the log map
    :math:`\theta_{ij} = \operatorname{atan2}(\log_2, \log_1)` and the geodesic length, and calls

    .. math::
        \mathbf{out}_i = \mathrm{update}\Big(\bigoplus_{j} \mathrm{message}(\tilde f_j,
        \theta_{ij}, \ell_{ij}, w_{ij}), f_i\Big).

    A new layer overrides :meth:`message` (any function of these arguments that is equivariant:
    :math:`\tilde f_j` and :math:`\theta_{ij}` both turn with the receiver's gauge), or
    :meth:`kernel`, a function of :math:`(\theta, \ell)` returning per-edge matrices
    :math:`K(\theta) \in \mathbb{R}^{C_\text{out} \times C_\text{in}}` that satisfy
    :math:`K(\theta - p) = \rho_\text{out}(-p) K(\theta) \rho_\text{in}(p)` (the default message is
    then :math:`w_{ij} K(\theta_{ij}) \tilde f_j`). Prove the layer with
    :func:`meshgdl.testing.assert_gauge_equivariant`. ``docs/tutorial_new_layer.md`` writes one.

    Args:
        in_type (FieldType): the input field type.
        out_type (FieldType, optional): the output field type (default: ``in_type``).
        aggr (str): PyG aggregation of the messages, ``"add"``, ``"mean"``, ... (default: ``"add"``)
        **kwargs: passed to :class:`torch_geometric.nn.MessagePassing`.

    Shapes:
        - input: ``x`` :math:`[N, C_\text{in}]`, ``graph`` with ``edge_index`` :math:`[2, E]`,
          ``edge_logmap`` :math:`[E, 2]`, ``edge_transport`` :math:`[E]`, optional ``edge_weight``
          :math:`[E]`
        - output: :math:`[N, C_\text{out}]`

    Every ``forward`` first checks ``x`` against ``in_type`` and the graph's node count
    (:meth:`_check_input`); a graph without edges gives the update of an empty aggregate.
    """

    def __init__(self, in_type: FieldType, out_type: FieldType | None = None, aggr: str = "add", **kwargs):
        super().__init__(aggr=aggr, **kwargs)
        for t in (in_type, out_type or in_type):
            if not (hasattr(t, "transform") and hasattr(t, "dim")):
                raise TypeError(f"in_type and out_type must be field types (meshgdl.FieldType, e.g. FieldType([4, 2])), got {t!r}")
        self.in_type = in_type
        self.out_type = out_type or in_type
        params = inspect.signature(self.message).parameters
        self._wants_x_i = "x_i" in params

    def forward(self, x: Tensor, graph) -> Tensor:
        self._check_input(x, graph)
        edge_index = graph.edge_index
        edge_weight = graph.edge_weight if "edge_weight" in graph else None
        return self.gauge_propagate(x, edge_index, graph.edge_logmap, graph.edge_transport, edge_weight)

    def _check_input(self, x: Tensor, graph, batched: bool = False) -> None:
        """Refuse features that are not ``[N, in_type.dim]`` (or ``[B, N, in_type.dim]`` where
        ``batched``) for the graph's ``N`` nodes, with a message that names the fix."""
        check_features(self, x, self.in_type, graph_num_nodes(graph), batched)

    def gauge_propagate(self, x: Tensor, edge_index: Tensor, edge_logmap: Tensor, edge_transport: Tensor,
                        edge_weight: Tensor | None = None) -> Tensor:
        """Transport, :meth:`message`, PyG's aggregation and :meth:`update`, on plain tensors."""
        j, i = edge_index[0], edge_index[1]
        x_j = self.transport(x.index_select(0, j), edge_transport)
        # angles and lengths in the geometry's precision, then in the features' dtype (as the fused path)
        theta = torch.atan2(edge_logmap[:, 1], edge_logmap[:, 0]).to(x.dtype)
        length = edge_logmap.norm(dim=-1).to(x.dtype)
        edge_weight = None if edge_weight is None else edge_weight.to(x.dtype)
        extra = {"x_i": x.index_select(0, i)} if self._wants_x_i else {}
        msg = self.message(x_j=x_j, edge_theta=theta, edge_length=length, edge_weight=edge_weight, **extra)
        out = self.aggregate(msg, i, dim_size=x.shape[0])
        return self.update(out, x=x)

    def aggregate(self, inputs: Tensor, index: Tensor, ptr=None, dim_size: int | None = None) -> Tensor:
        # sums and means go through meshgdl.ops, so its backends (torch-scatter, deterministic CSR) apply
        if self.aggr in ("add", "sum"):
            return ops.scatter_sum(inputs, index, dim_size)
        if self.aggr == "mean":
            return ops.scatter_mean(inputs, index, dim_size)
        return super().aggregate(inputs, index, ptr=ptr, dim_size=dim_size)

    def transport(self, x_j: Tensor, edge_transport: Tensor) -> Tensor:
        r""":math:`\rho_\text{in}(a_{ji}) f_j`: features of the source in the target's frame, ``[E, C]``."""
        return self.in_type.transform(x_j, -edge_transport)

    def message(self, x_j: Tensor, edge_theta: Tensor, edge_length: Tensor, edge_weight: Tensor | None) -> Tensor:
        kernel = self.kernel(edge_theta, edge_length)
        msg = torch.einsum("eoc,ec->eo", kernel, x_j)
        return msg if edge_weight is None else msg * edge_weight[:, None]

    def kernel(self, edge_theta: Tensor, edge_length: Tensor) -> Tensor:
        """Per-edge kernel matrices ``[E, C_out, C_in]``; override this or :meth:`message`."""
        raise NotImplementedError(f"{type(self).__name__} must override message() or kernel()")

    def update(self, aggr_out: Tensor, x: Tensor) -> Tensor:
        return aggr_out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_type}, {self.out_type})"
