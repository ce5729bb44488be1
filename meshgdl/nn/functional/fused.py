r"""Fused aggregation for GemConv and IsoConv: sparse products with fixed geometric coefficients.

The learned weights of these layers do not depend on the edge, so the per-edge work is a fixed
linear map of the neighbours' features. For input frequency ``m`` GemConv needs, for each phase
``s`` and radial profile ``r``,

.. math::
    A_{m,s,r}(i) = \sum_{j \to i} w_{ij}\, \phi_r(\ell_{ij})\, e^{i(s \theta_{ij} + m a_{ji})}\, z_j,

with :math:`z_j = u_j + i v_j` the frequency-``m`` pairs of :math:`f_j`. That is one sparse
matrix per ``m`` (rows ``(i, s, r, Re/Im)``), built once per graph by
:func:`meshgdl.ops.edge_operator`, cached, and shared by every layer with the same frequencies.
For ``m > 0`` it is the real form of the complex product (:func:`meshgdl.ops.pair_operator`),
whose bag sums write :math:`(\mathrm{Re}, \mathrm{Im})` straight into the output, so the aggregate
is never combined, permuted or concatenated; for ``m = 0`` the rows that are zero on every graph
(``s = 0``'s imaginary part) are left out. No per-edge feature tensor is formed: memory is :math:`O(E \cdot S)`
numbers for the geometry (twice that once a backward has run: the transpose is kept, see
:class:`meshgdl.ops.SparseOperator`) plus :math:`O(N C)` for the features.
The result equals the message-passing path (``GaugeMessagePassing.gauge_propagate``) exactly.
Each product is the custom operator ``meshgdl::fused_aggregate``, which finds its operator in the
cache itself, so the fused layers compile with ``torch.compile(fullgraph=True)``.
"""
from __future__ import annotations

from functools import partial
from typing import Optional

import torch
from torch import Tensor

from ... import ops
from ..._transforms import linear_in_features
from .._input import graph_num_nodes
from .gem_basis import gaussian_radial, phases


def _check_edge_weight(layer, graph):
    if layer.use_edge_weight and ("edge_weight" not in graph or graph.edge_weight is None):
        raise ValueError(f"{type(layer).__name__}(use_edge_weight=True) needs graph.edge_weight; the graph has none")
    return graph.edge_weight if layer.use_edge_weight else None


def _coefficients(edge_logmap: Tensor, edge_transport: Tensor, edge_weight: Tensor | None, m: int, ss: list[int],
                  num_radial: int, cutoff: float, dtype) -> Tensor:
    """Per-edge coefficients ``[E, K]``: radial profiles times the edge weight, times the phases
    ``e^{i(s theta + m a)}`` as (Re, Im) when ``ss`` is not empty; ``K = S R 2`` in that order
    (or ``R``), so that each phase is one run of rows."""
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
    return (scale[:, None, :, None] * phase[:, :, None]).reshape(e, len(ss) * radial * 2)     # [E, (S, R, 2)]


@torch.library.custom_op("meshgdl::fused_aggregate", mutates_args=())
def fused_aggregate(x: Tensor, edge_index: Tensor, edge_logmap: Tensor, edge_transport: Tensor,
                    edge_weight: Optional[Tensor], num_nodes: int, m: int, ss: list[int], num_radial: int,
                    cutoff: float, normalize: bool, transpose: bool) -> Tensor:
    r""":math:`y = A x` for the operator :math:`A` of :func:`_coefficients`, looked up in (or added
    to) the per-graph cache: ``[N, F]`` -> ``[N K, F]``; with ``transpose``, :math:`A^\top`.

    For ``m > 0`` (``ss`` not empty) ``x`` holds complex numbers as ``(u, v)`` pairs in its last
    dimension, ``F = 2 F'``, and the product is complex, :math:`(\mathrm{Re}\,Pz, \mathrm{Im}\,Pz)`
    for each ``(s, r)``: ``[N, F]`` -> ``[N K, F']``, one bag sum of
    :func:`meshgdl.ops.pair_operator` that writes the output directly. Its transpose is the adjoint:
    ``[N K, F']`` -> ``[N, F]``. For ``m = 0`` the rows of ``s = 0``'s imaginary part, zero on every
    graph, are left out (:func:`fused_rows` gives ``K``).

    A custom operator, so that ``torch.compile`` keeps the fused layers in one graph: the cache
    lookup and the operator building (argsort, bincount) run inside it, never traced. Gradients
    flow to ``x`` only. float16 and bfloat16 run in float32 and are cast back.
    """
    dtype = ops.compute_dtype(x.dtype)
    key = ("fused", m, tuple(ss), num_radial, cutoff, normalize, edge_weight is not None, dtype, str(x.device))

    def build():
        coef = _coefficients(edge_logmap, edge_transport, edge_weight, m, ss, num_radial, cutoff, dtype).to(x.device)
        if m > 0 and ss:
            return ops.pair_operator(edge_index.to(x.device), coef.view(coef.shape[0], coef.shape[1] // 2, 2), num_nodes, normalize)
        if ss:  # real input: the imaginary rows of s = 0 are sin 0 = 0 on every edge
            coef = coef[:, _nonzero_rows(m, ss, num_radial).to(x.device)]
        return ops.edge_operator(edge_index.to(x.device), coef, num_nodes, normalize)

    op = ops.cached_operator(edge_index, key, build, depends=(edge_logmap, edge_transport, edge_weight))
    if not (m > 0 and ss):
        return op.product(x.to(dtype), transpose).to(x.dtype)
    if transpose:
        return _unstack_pairs(op.product(x.to(dtype).reshape(-1, 2 * x.shape[1]), True)).to(x.dtype)
    return op.product(_stack_pairs(x.to(dtype))).view(-1, x.shape[1] // 2).to(x.dtype)


def _nonzero_rows(m: int, ss: list[int], num_radial: int) -> Tensor:
    """Which of the ``S R 2`` rows of :func:`_coefficients` are not zero for every graph: all but
    the imaginary parts of phase ``s = 0`` for real input (``m = 0``)."""
    keep = torch.ones(len(ss), max(num_radial, 1), 2, dtype=torch.bool)
    if m == 0 and 0 in ss:
        keep[ss.index(0), :, 1] = False
    return keep.view(-1)


def _stack_pairs(x: Tensor) -> Tensor:
    r"""``[N, 2 F']`` of ``(u, v)`` pairs -> the input of :func:`meshgdl.ops.pair_operator`,
    ``[2 N, 2 F']`` with rows :math:`(u \,|\, v)` and :math:`(-v \,|\, u)` a node."""
    pairs = x.reshape(x.shape[0], x.shape[1] // 2, 2)
    out = x.new_empty(x.shape[0], 2, 2, pairs.shape[1])                 # [N, row, u / v half, F']
    out[:, 0, 0], out[:, 0, 1], out[:, 1, 1] = pairs[..., 0], pairs[..., 1], pairs[..., 0]
    torch.neg(pairs[..., 1], out=out[:, 1, 0])
    return out.view(2 * x.shape[0], x.shape[1])


def _unstack_pairs(g: Tensor) -> Tensor:
    """The adjoint of :func:`_stack_pairs`: ``[2 N, 2 F']`` -> ``[N, 2 F']`` of pairs."""
    g = g.view(g.shape[0] // 2, 2, 2, g.shape[1] // 2)
    out = g.new_empty(g.shape[0], g.shape[3], 2)
    torch.add(g[:, 0, 0], g[:, 1, 1], out=out[..., 0])
    torch.sub(g[:, 0, 1], g[:, 1, 0], out=out[..., 1])
    return out.view(g.shape[0], 2 * g.shape[3])


def fused_rows(m: int, ss: list[int], num_radial: int) -> int:
    """Rows a node of the operator for frequency ``m`` and phases ``ss``: ``[N, F]`` -> ``[N K, F']``."""
    # plain integers, so that the fake of a compiled graph computes it too
    return max(num_radial, 1) * (2 * len(ss) - (m == 0 and 0 in ss) if ss else 1)


@fused_aggregate.register_fake
def _(x, edge_index, edge_logmap, edge_transport, edge_weight, num_nodes, m, ss, num_radial, cutoff, normalize,
      transpose):
    k = fused_rows(m, ss, num_radial)
    width = (2 if transpose else 0.5) if m > 0 and ss else 1
    return x.new_empty((num_nodes if transpose else num_nodes * k, int(x.shape[1] * width)))


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
    options = (graph_num_nodes(graph), m, ss, layer.num_radial, float(layer.cutoff or 0.0), layer.normalize)
    return linear_in_features(partial(_fused_on_features, options=options), False, x, graph.edge_index,
                              graph.edge_logmap, graph.edge_transport, _check_edge_weight(layer, graph))


def _channels_last(x: Tensor) -> tuple[Tensor, tuple]:
    """``[N, C]`` or ``[B, N, C]`` (one graph shared by B samples) -> ``[N, B * C]``."""
    if x.dim() == 2:
        return x, ()
    b, n, c = x.shape
    return x.permute(1, 0, 2).reshape(n, b * c), (b,)


def gem_aggregate(layer, x: Tensor | list[Tensor], graph) -> list[Tensor]:
    r"""What GemConv's message passing aggregates, one ``[*, N, D_m]`` a input frequency ``m``, from
    ``x`` of ``[*, N, C_in]`` (or its pieces by input frequency, ``x.split``); :math:`\sum_m D_m = D`.

    The channels come in the order ``(s, r, re/im, c)`` within each input frequency (without
    the imaginary parts of ``s = 0`` for ``m = 0``, zero on every graph), where the
    message-passing path has ``(c, r, s, re/im)``: :func:`fused_columns` says how the weights'
    columns follow, so no large tensor is ever permuted, and the parts are kept apart rather than
    concatenated. Each phase ``s`` is read by one output frequency only, :math:`n = |s + m|`, and
    the phases come grouped by it (:func:`fused_phases`), so the layer multiplies each group's run
    of channels by its own block of the weight (:func:`phase_targets`): about a third of the dense
    work of the whole weight at ``K = 2``. The
    complex products run as real ones inside ``meshgdl::fused_aggregate`` (PyTorch's complex
    sparse product is many times slower than its real one).
    """
    n = graph_num_nodes(graph)
    k_out = layer.out_type.max_frequency
    if isinstance(x, Tensor):
        x = [x[..., sl] for _, sl in layer._in]
    parts = []
    for (m, _), piece in zip(layer._in, x):
        ss = fused_phases(m, k_out)
        mult = layer.in_type.multiplicities[m]
        flat, b = _channels_last(piece)                                                     # [N, (B,) mult (, 2)]
        rows = fused_rows(m, ss, layer.num_radial)
        y = _aggregate(layer, graph, flat, m, ss)                                           # [N K, (B,) mult]
        width = rows * mult
        parts.append(y.view(n, width) if not b else
                     y.view(n, rows, b[0], mult).permute(2, 0, 1, 3).reshape(b[0], n, width))
    return parts


def fused_phases(m: int, k_out: int) -> list[int]:
    r"""The phases of :func:`~.gem_basis.phases` in the fused path's order: by the output frequency
    :math:`n = |s + m|` that reads them (:func:`~.gem_basis.phase_coefficients`: basis kernels
    from ``m`` to ``n`` read :math:`s = n - m` and :math:`s = -(n + m)` only)."""
    return sorted(phases(m, k_out), key=lambda s: (abs(s + m), s))


def fused_columns(layer) -> Tensor:
    """For each channel of :func:`gem_aggregate`'s output, the channel of the message-passing path's."""
    k_out, radial = layer.out_type.max_frequency, max(layer.num_radial, 1)
    columns, offset = [], 0
    for m, _ in layer._in:
        plain_order, mult = phases(m, k_out), layer.in_type.multiplicities[m]
        plain = torch.arange(mult * radial * len(plain_order) * 2).view(mult, radial, len(plain_order), 2) + offset
        ss = fused_phases(m, k_out)
        fused = plain[:, :, [plain_order.index(s) for s in ss]].permute(2, 1, 3, 0).reshape(-1, mult)   # [S R 2, mult]
        columns.append(fused[_nonzero_rows(m, ss, layer.num_radial)].reshape(-1))
        offset += plain.numel()
    return torch.cat(columns)


def phase_targets(layer) -> list[list[tuple[int, int]]]:
    """For each part of :func:`gem_aggregate`, ``(n, width)`` for each run of channels that output
    frequency ``n`` reads (the phases of :func:`fused_phases` with the same ``n``)."""
    targets = []
    for m, _ in layer._in:
        runs = []
        for s in fused_phases(m, layer.out_type.max_frequency):
            width = fused_rows(m, [s], layer.num_radial) * layer.in_type.multiplicities[m]
            if runs and runs[-1][0] == abs(s + m):
                runs[-1] = (runs[-1][0], runs[-1][1] + width)
            else:
                runs.append((abs(s + m), width))
        targets.append(runs)
    return targets


def iso_aggregate(layer, x: Tensor, graph) -> Tensor:
    r"""IsoConv's neighbour term :math:`\sum_r (\sum_j w_{ij} \phi_r(\ell_{ij}) x_j) W_r`: ``[*, N, C_out]``."""
    n = graph_num_nodes(graph)
    flat, b = _channels_last(x)
    y = _aggregate(layer, graph, flat, 0, []).view(n, max(layer.num_radial, 1), *b, layer.in_channels)  # [N, R, (B,) C]
    return torch.einsum("nr...c,rco->...no", y, layer.weight)


def _fused_on_features(x: Tensor, edge_index: Tensor, edge_logmap: Tensor, edge_transport: Tensor,
                       edge_weight: Optional[Tensor], transpose: bool, *, options: tuple) -> Tensor:
    """:func:`fused_aggregate` with the features first and the geometry after them, for
    :func:`~meshgdl._transforms.linear_in_features` (``torch.func`` rules: vmap, jvp, vjp)."""
    return fused_aggregate(x, edge_index, edge_logmap, edge_transport, edge_weight, *options, transpose)
