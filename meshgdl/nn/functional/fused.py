r"""Fused aggregation for GemConv and IsoConv: sparse products with fixed geometric coefficients.

The learned weights of these layers do not depend on the edge, so the per-edge work is a fixed
linear map of the neighbours' features. For input frequency ``m`` GemConv needs, for each phase
``s`` and radial profile ``r``,

.. math::
    A_{m,s,r}(i) = \sum_{j \to i} w_{ij}\, \phi_r(\ell_{ij})\, e^{i(s \theta_{ij} + m a_{ji})}\, z_j,

with :math:`z_j = u_j + i v_j` the frequency-``m`` pairs of :math:`f_j`. That is one sparse
matrix per ``m`` (rows ``(i, r, s)``), built once per graph by :func:`meshgdl.ops.edge_operator`,
cached, and shared by every layer with the same frequencies. No per-edge feature tensor is formed:
memory is :math:`O(E \cdot S)` numbers for the geometry plus :math:`O(N C)` for the features.
The result equals the message-passing path (``GaugeMessagePassing.gauge_propagate``) exactly.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ... import ops
from .gem_basis import gaussian_radial, phases

def _profiles(layer, graph, dtype) -> Tensor:
    """Per-edge scalar factors ``[E, R]``: radial profiles times the edge weight if used."""
    length = graph.edge_logmap.to(dtype).norm(dim=-1)
    scale = gaussian_radial(length, layer.num_radial, layer.cutoff) if layer.num_radial else length.new_ones(length.shape[0], 1)
    if layer.use_edge_weight:
        if "edge_weight" not in graph or graph.edge_weight is None:
            raise ValueError(f"{type(layer).__name__}(use_edge_weight=True) needs graph.edge_weight; the graph has none")
        scale = scale * graph.edge_weight.to(dtype)[:, None]
    return scale


def _channels_last(x: Tensor) -> tuple[Tensor, tuple]:
    """``[N, C]`` or ``[B, N, C]`` (one graph shared by B samples) -> ``[N, B * C]``."""
    if x.dim() == 2:
        return x, ()
    b, n, c = x.shape
    return x.permute(1, 0, 2).reshape(n, b * c), (b,)


def gem_aggregate(layer, x: Tensor, graph) -> Tensor:
    r"""What GemConv's message passing aggregates, ``[*, N, D]``, from ``x`` of ``[*, N, C_in]``.

    The channels come in the order ``(r, s, re/im, c)`` within each input frequency, where the
    message-passing path has ``(c, r, s, re/im)``: :func:`fused_columns` says how the weights'
    columns follow, so no large tensor is ever permuted. The complex products run as real ones
    (PyTorch's complex sparse product is many times slower than its real one): the operator holds
    :math:`\mathrm{Re}\,P` and :math:`\mathrm{Im}\,P` as two rows a phase, the input :math:`(u, v)`
    as two blocks of channels, and one small contraction forms
    :math:`Pz = (\mathrm{Re}P\,u - \mathrm{Im}P\,v) + i(\mathrm{Re}P\,v + \mathrm{Im}P\,u)`.
    """
    n = graph.num_nodes
    batch = x.shape[:-2]
    k_out = layer.out_type.max_frequency
    radial = max(layer.num_radial, 1)
    parts = []
    for m, sl in layer._in:
        ss = phases(m, k_out)
        key = ("gem", m, tuple(ss), layer.num_radial, layer.cutoff, layer.use_edge_weight, layer.normalize, x.dtype, str(x.device))
        op = ops.cached_operator(graph, key, lambda: _gem_operator(layer, graph, m, ss, x.dtype))
        mult = layer.in_type.multiplicities[m]
        feat = x[..., sl]
        feat = feat.unflatten(-1, (mult, 2)).movedim(-1, -3) if m else feat.unsqueeze(-3)   # [*, Z, N, mult]
        flat = feat.movedim(-2, 0).reshape(n, -1)                                           # [N, (*, Z, mult)]
        y = op(flat).view(n, radial, len(ss), 2, *batch, feat.shape[-3], mult)              # [N, R, S, P, *, Z, mult]
        mix = _COMBINE[: feat.shape[-3]].to(x)                                              # [Z, P, 2]
        out = torch.einsum("nrsp...zc,zpk->...nrskc", y, mix)
        parts.append(out.reshape(*batch, n, -1))
    return torch.cat(parts, -1)


# how (Re P, Im P) times (u, v) combine into (Re, Im) of P z; a real input (Z = 1) keeps row 0
_COMBINE = torch.tensor([[[1.0, 0.0], [0.0, 1.0]],      # u: Re P u -> Re, Im P u -> Im
                         [[0.0, 1.0], [-1.0, 0.0]]])    # v: Re P v -> Im, -Im P v -> Re


def fused_columns(layer) -> Tensor:
    """For each channel of :func:`gem_aggregate`'s output, the channel of the message-passing path's."""
    k_out, radial = layer.out_type.max_frequency, max(layer.num_radial, 1)
    columns, offset = [], 0
    for m, _ in layer._in:
        mult, s = layer.in_type.multiplicities[m], len(phases(m, k_out))
        plain = torch.arange(mult * radial * s * 2).view(mult, radial, s, 2) + offset
        columns.append(plain.permute(1, 2, 3, 0).reshape(-1))
        offset += plain.numel()
    return torch.cat(columns)


def _gem_operator(layer, graph, m: int, ss: list[int], dtype) -> ops.SparseOperator:
    log = graph.edge_logmap.to(dtype)
    theta = torch.atan2(log[:, 1], log[:, 0])
    angle = theta[:, None] * torch.tensor(ss, dtype=dtype, device=theta.device) + m * graph.edge_transport.to(dtype)[:, None]
    phase = torch.stack([torch.cos(angle), torch.sin(angle)], -1)                           # [E, S, 2]
    coef = _profiles(layer, graph, dtype)[:, :, None, None] * phase[:, None]                # [E, R, S, 2]
    return ops.edge_operator(graph.edge_index, coef.reshape(coef.shape[0], -1), graph.num_nodes, layer.normalize)


def iso_aggregate(layer, x: Tensor, graph) -> Tensor:
    r"""IsoConv's neighbour term :math:`\sum_r (\sum_j w_{ij} \phi_r(\ell_{ij}) x_j) W_r`: ``[*, N, C_out]``."""
    n = graph.num_nodes
    key = ("iso", layer.num_radial, layer.cutoff, layer.use_edge_weight, layer.normalize, x.dtype, str(x.device))
    op = ops.cached_operator(graph, key, lambda: ops.edge_operator(
        graph.edge_index, _profiles(layer, graph, x.dtype), n, layer.normalize))
    flat, b = _channels_last(x)
    y = op(flat).view(n, -1, *b, layer.in_channels)                       # [N, R, (B,) C]
    return torch.einsum("nr...c,rco->...no", y, layer.weight)
