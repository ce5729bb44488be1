r"""``torch.func`` rules for the sparse custom operators: vmap, forward mode and reverse mode.

``meshgdl::spmm`` and ``meshgdl::fused_aggregate`` compute :math:`y = A x` (or :math:`A^\top x`)
for a matrix :math:`A` fixed by the geometry. A custom operator compiles as one node, but
``torch.func`` cannot differentiate through its ``register_autograd`` rule, has no forward-mode
rule for it (``jvp`` would drop its term) and no batching rule. :func:`linear_in_features` runs the
operator inside an :class:`torch.autograd.Function` that gives all three from linearity:

.. math::
    \dot y = A \dot x, \qquad \bar x = A^\top \bar y, \qquad
    \operatorname{vmap}_b(A x_b) = A\,[x_1 \cdots x_B],

the last by folding the batch dimension into the columns, since the operators act on rows.
Every rule calls :func:`linear_in_features` again, so transforms compose (``jacrev`` of ``jvp``,
``vmap`` of ``grad``, double backward). Under ``torch.compile`` the operator is called directly,
where its own autograd rule serves the compiled backward.
"""
from __future__ import annotations

import torch
from torch import Tensor


def linear_in_features(op, transpose: bool, x: Tensor, *geometry) -> Tensor:
    r"""``op(x, *geometry, transpose)`` for an ``op`` linear in ``x`` whose adjoint is
    ``op(., *geometry, not transpose)``, differentiable by ``torch.autograd`` and ``torch.func``.

    Args:
        op (callable): ``op(x, *geometry, transpose) -> Tensor``; acts on the rows of ``x``, so
            that the columns of several inputs may be placed side by side.
        transpose (bool): apply :math:`A^\top` instead of :math:`A`.
        x (Tensor): the features, :math:`[\text{cols}, *]`.
        *geometry (Tensor or None): the tensors that fix :math:`A`, held fixed: a gradient
            asked of them raises an error, and forward mode treats them as constants.

    Shapes:
        - x: :math:`[\text{cols}, *]`
        - output: :math:`[\text{rows}, *']`
    """
    if torch.compiler.is_compiling():
        return op(x, *geometry, transpose)
    return _LinearInFeatures.apply(op, transpose, x, *geometry)


_GEOMETRY_GRADIENT = ("{} differentiates with respect to the features only, but a gradient was asked of its "
                      "geometry (edge_logmap, edge_transport, edge_weight or the sparse arrays). Build the layer "
                      "with fused=False (or use the 'native' backend) to differentiate through the geometry")


class _LinearInFeatures(torch.autograd.Function):
    @staticmethod
    def forward(op, transpose, x, *geometry):
        return op(x, *geometry, transpose)

    @staticmethod
    def setup_context(ctx, inputs, output):
        op, transpose, _, *geometry = inputs
        ctx.op, ctx.transpose = op, transpose
        ctx.save_for_backward(*geometry)
        ctx.save_for_forward(*geometry)

    @staticmethod
    def backward(ctx, grad):
        if any(ctx.needs_input_grad[3:]):
            raise RuntimeError(_GEOMETRY_GRADIENT.format(_name(ctx.op)))
        return (None, None, linear_in_features(ctx.op, not ctx.transpose, grad, *ctx.saved_tensors)) \
            + (None,) * len(ctx.saved_tensors)

    @staticmethod
    def jvp(ctx, _op, _transpose, x_tangent, *_geometry_tangents):
        # torch.func hands constants zero tangents, so a geometry tangent cannot be refused here
        # without a device sync; the geometry is held fixed, as in the backward
        return linear_in_features(ctx.op, ctx.transpose, x_tangent, *ctx.saved_tensors)

    @staticmethod
    def vmap(info, in_dims, op, transpose, x, *geometry):
        if any(d is not None for d in in_dims[3:]):
            raise ValueError(f"torch.vmap over {_name(op)} maps over the features only; the geometry "
                             "(graph tensors or sparse arrays) must be the same for every sample. Loop over "
                             "the graphs, or batch them into one disjoint graph (torch_geometric Batch)")
        if in_dims[2] is None:
            return linear_in_features(op, transpose, x, *geometry), None
        x = x.movedim(in_dims[2], 1)                         # [cols, B, *]: the batch beside the columns
        per_sample = x.shape[2:]
        y = linear_in_features(op, transpose, x.reshape(x.shape[0], -1), *geometry)
        # one trailing dim may change width (complex pairs); several are kept as they are. Each
        # sample's output is made contiguous, since callers view it as an unbatched one.
        y = y.view(y.shape[0], info.batch_size, *(per_sample if len(per_sample) != 1 else (-1,)))
        return y.movedim(1, 0).contiguous(), 0


def _name(op) -> str:
    return getattr(getattr(op, "func", op), "__name__", "the sparse operator")
