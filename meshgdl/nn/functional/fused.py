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
Each product is the custom operator ``meshgdl::fused_aggregate``, which finds its operator in the
cache itself, so the fused layers compile with ``torch.compile(fullgraph=True)``.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from ... import ops
from .._input import graph_num_nodes
from .gem_basis import gaussian_radial, phases


def _check_edge_weight(layer, graph):
    if layer.use_edge_weight and ("edge_weight" not in graph or graph.edge_weight is None):
        raise ValueError(f"{type(layer).__name__}(use_edge_weight=True) needs graph.edge_weight; the graph has none")
    return graph.edge_weight if layer.use_edge_weight else None


def _coefficients(edge_logmap: Tensor, edge_transport: Tensor, edge_weight: Tensor | None, m: int, ss: list[int],
                  num_radial: int, cutoff: float, dtype) -> Tensor:
    """Per-edge coefficients ``[E, K]``: radial profiles times the edge weight, times the phases
    ``e^{i(s theta + m a)}`` as (Re, Im) when ``ss`` is not empty; ``K = R S 2`` (or ``R``)."""
    # angles and lengths in the geometry's precision, then in the compute dtype (as message passing)
    e, radial = edge_logmap.shape[0], max(num_radial, 1)
    length = edge_logmap.norm(dim=-1).to(dtype)
    scale = gaussian_radial(length, num_radial, cutoff) if num_radial else length.new_ones(e, 1)
    if edge_weight is not None:
        scale = scale * edge_weight.to(dtype)[:, None]
    if not ss:
        return scale
    theta = torch.atan2(edge_logmap[:, 1], edge_logmap[:, 0]).to(dtype)
    angle = theta[:, None] * torch.tensor(ss, dtype=dtype, device=theta.device) + m * edge_transport.to(dtype)[:, None]
    phase = torch.stack([torch.cos(angle), torch.sin(angle)], -1)                           # [E, S, 2]
    return (scale[:, :, None, None] * phase[:, None]).reshape(e, radial * len(ss) * 2)     # [E, (R, S, 2)]


@torch.library.custom_op("meshgdl::fused_aggregate", mutates_args=())
def fused_aggregate(x: Tensor, edge_index: Tensor, edge_logmap: Tensor, edge_transport: Tensor,
                    edge_weight: Optional[Tensor], num_nodes: int, m: int, ss: list[int], num_radial: int,
                    cutoff: float, normalize: bool, transpose: bool) -> Tensor:
    r""":math:`y = A x` (or :math:`A^\top x`) for the operator :math:`A` of :func:`_coefficients`,
    ``[N, F]`` -> ``[N K, F]``, looked up in (or added to) the per-graph cache.

    A custom operator, so that ``torch.compile`` keeps the fused layers in one graph: the cache
    lookup and the operator building (argsort, bincount) run inside it, never traced. Gradients
    flow to ``x`` only. float16 and bfloat16 run in float32 and are cast back.
    """
    dtype = ops.compute_dtype(x.dtype)
    key = ("fused", m, tuple(ss), num_radial, cutoff, normalize, edge_weight is not None, dtype, str(x.device))

    def build():
        coef = _coefficients(edge_logmap, edge_transport, edge_weight, m, ss, num_radial, cutoff, dtype)
        return ops.edge_operator(edge_index.to(x.device), coef.to(x.device), num_nodes, normalize)

    op = ops.cached_operator(edge_index, key, build, depends=(edge_logmap, edge_transport, edge_weight))
    return op.product(x.to(dtype), transpose).to(x.dtype)


@fused_aggregate.register_fake
def _(x, edge_index, edge_logmap, edge_transport, edge_weight, num_nodes, m, ss, num_radial, cutoff, normalize,
      transpose):
    k = max(num_radial, 1) * (2 * len(ss) if ss else 1)
    return x.new_empty((num_nodes if transpose else num_nodes * k,) + x.shape[1:])


def _fused_setup(ctx, inputs, output):
    ctx.has_weight = inputs[4] is not None
    ctx.save_for_backward(*(t for t in inputs[1:5] if t is not None))
    ctx.options = inputs[5:]


def _fused_backward(ctx, grad):
    edge_index, edge_logmap, edge_transport, *weight = ctx.saved_tensors
    num_nodes, m, ss, num_radial, cutoff, normalize, transpose = ctx.options
    gx = fused_aggregate(grad, edge_index, edge_logmap, edge_transport, weight[0] if ctx.has_weight else None,
                         num_nodes, m, ss, num_radial, cutoff, normalize, not transpose)
    return (gx,) + (None,) * 11


fused_aggregate.register_autograd(_fused_backward, setup_context=_fused_setup)


def _aggregate(layer, graph, x: Tensor, m: int, ss: list[int]) -> Tensor:
    """The layer's operator for frequency ``m`` and phases ``ss`` applied to ``x`` ``[N, F]``."""
    return fused_aggregate(x, graph.edge_index, graph.edge_logmap, graph.edge_transport, _check_edge_weight(layer, graph),
                           graph_num_nodes(graph), m, ss, layer.num_radial, float(layer.cutoff or 0.0), layer.normalize, False)


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
    n = graph_num_nodes(graph)
    batch = x.shape[:-2]
    k_out = layer.out_type.max_frequency
    radial = max(layer.num_radial, 1)
    parts = []
    for m, sl in layer._in:
        ss = phases(m, k_out)
        mult = layer.in_type.multiplicities[m]
        feat = x[..., sl]
        feat = feat.unflatten(-1, (mult, 2)).movedim(-1, -3) if m else feat.unsqueeze(-3)   # [*, Z, N, mult]
        flat = feat.movedim(-2, 0).reshape(n, math.prod(feat.shape[:-2]) * mult)            # [N, (*, Z, mult)]
        y = _aggregate(layer, graph, flat, m, ss)
        y = y.view(n, radial, len(ss), 2, *batch, feat.shape[-3], mult)                     # [N, R, S, P, *, Z, mult]
        mix = _COMBINE[: feat.shape[-3]].to(x)                                              # [Z, P, 2]
        out = torch.einsum("nrsp...zc,zpk->...nrskc", y, mix)
        parts.append(out.reshape(*batch, n, radial * len(ss) * 2 * mult))
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


def iso_aggregate(layer, x: Tensor, graph) -> Tensor:
    r"""IsoConv's neighbour term :math:`\sum_r (\sum_j w_{ij} \phi_r(\ell_{ij}) x_j) W_r`: ``[*, N, C_out]``."""
    n = graph_num_nodes(graph)
    flat, b = _channels_last(x)
    y = _aggregate(layer, graph, flat, 0, []).view(n, max(layer.num_radial, 1), *b, layer.in_channels)  # [N, R, (B,) C]
    return torch.einsum("nr...c,rco->...no", y, layer.weight)
