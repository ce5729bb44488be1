r"""GemConv's dense update on the fused path, with every product written in place.

After :func:`~meshgdl.nn.functional.fused.gem_aggregate`, GemConv's output for frequency ``n`` is

.. math::
    y_n = \sum_{(p, r) \to n} A_{p,r} W_{n,p,r}^\top + x_n S_n^\top\;(+\, b \text{ for } n = 0),

one product for each run ``r`` of channels of each aggregated part ``p`` (an input frequency)
that output frequency ``n`` reads, plus the self term's diagonal block. Written with autograd,
the runs are split off their parts and the terms concatenated, and the backward concatenates the
runs' gradients back into each part's: on a CPU those copies of narrow column blocks took about a
tenth of a GemConv K = 2 step. :class:`FusedUpdate` computes the same sums with every product
written straight into its columns of the output (forward) or of the part's gradient (backward),
as BLAS reads and writes column blocks of row-major matrices in place. The plain autograd version
(:func:`plain_update`) serves ``torch.compile``, ``torch.func`` transforms, forward-mode AD and
autocast, and tests hold the two equal.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class UpdatePlan(NamedTuple):
    """The layout of a GemConv's fused update.

    ``out``: ``(n, start, stop)`` of each output frequency's channels; ``runs``: for each part,
    ``(n, column, width, weight_column)`` of each run of channels that frequency ``n`` reads;
    ``self_terms``: ``(n, piece)`` for each self block (in :meth:`GemConv._self_matrices`'s order);
    ``bias``: the output channels the bias adds to, or ``None``."""
    out: tuple
    runs: tuple
    self_terms: tuple
    bias: tuple | None


def plain_update(plan: UpdatePlan, weight: Tensor, bias: Tensor | None, parts, pieces, blocks) -> Tensor:
    """The update with autograd's own products: ``[*, N, C_out]`` (see the module docstring)."""
    out_sl, terms = {n: slice(a, b) for n, (a, b) in _columns(plan).items()}, {}
    if bias is not None:
        terms[0] = bias
    for part, runs in zip(parts, plan.runs):
        # split, not slices: its backward writes the part's gradient in one pass
        for piece, (n, _, width, w0) in zip(part.split([r[2] for r in runs], -1), runs):
            if n in out_sl:
                terms[n] = _add_product(terms.get(n), piece, weight[out_sl[n], w0:w0 + width].T)
    for (n, q), block in zip(plan.self_terms, blocks):
        terms[n] = _add_product(terms.get(n), pieces[q], block.T)
    lead = pieces[0].shape[:-1]
    return torch.cat([terms[n].expand(*lead, -1) if n in terms else weight.new_zeros(*lead, b - a)
                      for n, a, b in plan.out], -1)


def _add_product(acc: Tensor | None, a: Tensor, b: Tensor) -> Tensor:
    """``acc + a @ b`` (``a @ b`` without ``acc``), in one matrix product where the operands are matrices."""
    if acc is None:
        return torch.matmul(a, b)
    if a.dim() == 2:
        return torch.addmm(acc, a, b)
    return acc + a @ b


def fused_update(plan: UpdatePlan, weight: Tensor, bias: Tensor | None, parts, pieces, blocks) -> Tensor:
    r"""GemConv's dense update: ``parts`` ``[*, N, W_p]`` from :func:`gem_aggregate`, ``pieces``
    ``[*, N, C_m]`` the input split by frequency, ``blocks`` the self term's ``[C_n, C_n']``,
    ``weight`` ``[C_out, D]`` in the fused column order -> ``[*, N, C_out]``."""
    tensors = (*parts, *pieces, *blocks)
    if (torch.compiler.is_compiling() or torch.is_autocast_enabled(weight.device.type) or _forward_ad_active()
            or any(torch._C._functorch.is_functorch_wrapped_tensor(t) for t in (weight, *tensors))):
        return plain_update(plan, weight, bias, parts, pieces, blocks)
    return FusedUpdate.apply(plan, len(parts), len(pieces), weight, bias, *tensors)


def _forward_ad_active() -> bool:
    from torch.autograd import forward_ad

    return forward_ad._current_level >= 0


class FusedUpdate(torch.autograd.Function):
    """:func:`plain_update` with its products written in place (see the module docstring)."""

    @staticmethod
    def forward(ctx, plan, num_parts, num_pieces, weight, bias, *tensors):
        parts, pieces, blocks = _unpack(tensors, num_parts, num_pieces)
        lead = pieces[0].shape[:-1]
        rows = pieces[0].numel() // pieces[0].shape[-1]
        out = weight.new_empty(rows, weight.shape[0])
        written, columns = set(), _columns(plan)

        def add(n, a, b):
            a0, a1 = columns[n]
            dst = out[:, a0:a1]
            if n in written:
                torch.addmm(dst, a, b, out=dst)
            else:
                torch.mm(a, b, out=dst)
                written.add(n)

        for part, runs in zip(parts, plan.runs):
            flat = part.reshape(rows, part.shape[-1])
            for n, c0, width, w0 in runs:
                if n in columns:
                    a0, a1 = columns[n]
                    add(n, flat[:, c0:c0 + width], weight[a0:a1, w0:w0 + width].T)
        for (n, q), block in zip(plan.self_terms, blocks):
            add(n, pieces[q].reshape(rows, pieces[q].shape[-1]), block.T)
        for n, a0, a1 in plan.out:
            if n not in written:
                out[:, a0:a1].zero_()
        if bias is not None:
            out[:, plan.bias[0]:plan.bias[1]] += bias
        ctx.plan, ctx.counts, ctx.has_bias = plan, (num_parts, num_pieces), bias is not None
        ctx.save_for_backward(weight, *tensors)
        return out.view(*lead, weight.shape[0])

    @staticmethod
    def backward(ctx, grad):
        weight, *tensors = ctx.saved_tensors
        parts, pieces, blocks = _unpack(tensors, *ctx.counts)
        plan, need = ctx.plan, ctx.needs_input_grad
        rows = grad.numel() // grad.shape[-1]
        g = grad.reshape(rows, grad.shape[-1])
        # with create_graph the gradients must be differentiable: products and concatenations
        # then, instead of products written into preallocated columns
        graph = torch.is_grad_enabled()
        out_columns = _columns(plan)
        flats = [t.reshape(rows, t.shape[-1]) for t in parts]
        gw_rows = {n: [] for n, _, _ in plan.out} if need[3] else None
        gw = torch.zeros_like(weight) if need[3] and not graph else None
        part_grads = []
        for i, (flat, runs) in enumerate(zip(flats, plan.runs)):
            want = need[5 + i]
            gp = torch.empty_like(flat) if want and not graph else None
            columns = []
            for n, c0, width, w0 in runs:
                if n not in out_columns:  # an output frequency of multiplicity 0 reads nothing
                    if want and graph:
                        columns.append(flat.new_zeros(rows, width))
                    elif want:
                        gp[:, c0:c0 + width].zero_()
                    if gw_rows is not None:
                        for m, b0, b1 in plan.out:
                            gw_rows[m].append(weight.new_zeros(b1 - b0, width))
                    continue
                a0, a1 = out_columns[n]
                w_run, x_run, g_n = weight[a0:a1, w0:w0 + width], flat[:, c0:c0 + width], g[:, a0:a1]
                if want and graph:
                    columns.append(g_n @ w_run)
                elif want:
                    torch.mm(g_n, w_run, out=gp[:, c0:c0 + width])
                if gw is not None:
                    torch.mm(g_n.T, x_run, out=gw[a0:a1, w0:w0 + width])
                elif gw_rows is not None:
                    for m, b0, b1 in plan.out:  # the other frequencies' rows do not read this run
                        gw_rows[m].append(g_n.T @ x_run if m == n else weight.new_zeros(b1 - b0, width))
            if want and graph:
                gp = torch.cat(columns, -1)
            part_grads.append(None if gp is None else gp.view(parts[i].shape))
        if gw is None and gw_rows is not None:
            gw = torch.cat([torch.cat(gw_rows[n], -1) for n, _, _ in plan.out], 0)
        piece_grads, block_grads = [None] * len(pieces), []
        offset = 5 + len(parts)
        for (n, q), block in zip(plan.self_terms, blocks):
            a0, a1 = out_columns[n]
            if need[offset + q]:
                piece_grads[q] = (g[:, a0:a1] @ block).view(pieces[q].shape)
            x = pieces[q].reshape(rows, pieces[q].shape[-1])
            block_grads.append(g[:, a0:a1].T @ x if need[offset + len(pieces) + len(block_grads)] else None)
        gb = g[:, plan.bias[0]:plan.bias[1]].sum(0) if ctx.has_bias and need[4] else None
        return (None, None, None, gw, gb, *part_grads, *piece_grads, *block_grads)


def _unpack(tensors, num_parts: int, num_pieces: int):
    parts = tensors[:num_parts]
    return parts, tensors[num_parts:num_parts + num_pieces], tensors[num_parts + num_pieces:]


def _columns(plan: UpdatePlan) -> dict[int, tuple[int, int]]:
    """Output frequency ``n`` -> ``(start, stop)`` of its channels."""
    return {n: (a0, a1) for n, a0, a1 in plan.out}
