r"""Fused aggregation for GemConv and IsoConv: sparse products with fixed geometric coefficients.

The learned weights of these layers do not depend on the edge, so the per-edge work is a fixed
linear map of the neighbours' features. For input frequency ``m`` GemConv needs, for each phase
``s`` and radial profile ``r``,

.. math::
    A_{m,s,r}(i) = \sum_{j \to i} w_{ij}\, \phi_r(\ell_{ij})\, e^{i(s \theta_{ij} + m a_{ji})}\, z_j,

with :math:`z_j = u_j + i v_j` the frequency-``m`` pairs of :math:`f_j`. That is one complex sparse
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

_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


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
    """What GemConv's message passing aggregates, ``[*, N, D]``, from ``x`` of ``[*, N, C_in]``."""
    n = graph.num_nodes
    batch = x.shape[:-2]
    cdtype = _COMPLEX[x.dtype]
    k_out = layer.out_type.max_frequency
    radial = max(layer.num_radial, 1)
    parts = []
    for m, sl in layer._in:
        ss = phases(m, k_out)
        key = ("gem", m, tuple(ss), layer.num_radial, layer.cutoff, layer.use_edge_weight, layer.normalize, cdtype, str(x.device))
        op = ops.cached_operator(graph, key, lambda: _gem_operator(layer, graph, m, ss, cdtype))
        mult = layer.in_type.multiplicities[m]
        feat = x[..., sl]
        z = feat.to(cdtype) if m == 0 else torch.view_as_complex(feat.reshape(*feat.shape[:-1], mult, 2).contiguous())
        flat, b = _channels_last(z)
        y = op(flat).view(n, radial, len(ss), *b, mult)                    # [N, R, S, (B,) mult]
        y = y.permute(*range(3, 3 + len(b)), 0, 3 + len(b), 1, 2)         # [(B,) N, mult, R, S]
        parts.append(torch.view_as_real(y).reshape(*batch, n, -1))
    return torch.cat(parts, -1)


def _gem_operator(layer, graph, m: int, ss: list[int], cdtype) -> ops.SparseOperator:
    rdtype = {c: r for r, c in _COMPLEX.items()}[cdtype]
    log = graph.edge_logmap.to(rdtype)
    theta = torch.atan2(log[:, 1], log[:, 0])
    s = torch.tensor(ss, dtype=rdtype, device=theta.device)
    phase = torch.polar(torch.ones((), dtype=rdtype, device=theta.device),
                        theta[:, None] * s + m * graph.edge_transport.to(rdtype)[:, None])   # [E, S]
    coef = _profiles(layer, graph, rdtype)[:, :, None] * phase[:, None, :]                  # [E, R, S]
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
