r"""The empirical neural tangent kernel of any ``nn.Module``, through :mod:`torch.func`.

.. math::
    \Theta_{ab,ij} = \sum_p \frac{\partial f_i(x_a)}{\partial \theta_p}
    \frac{\partial f_j(x'_b)}{\partial \theta_p} = J(x) J(x')^\top,

two ways (Novak, Sohl-Dickstein and Schoenholz, "Fast finite width neural tangent kernel", ICML
2022): ``"jacobian"`` materialises :math:`J` for a chunk of inputs and contracts it (fast for small
models), ``"ntvp"`` never forms :math:`J`: a vjp turns each output direction :math:`e_{bj}` of
:math:`x'` into the parameter vector :math:`J(x')^\top e_{bj}` and a jvp pushes it through
:math:`f(x)`, giving one column of :math:`\Theta` (memory of a few parameter vectors; for large
models).

Inputs come in three forms, evaluated in pieces whose outputs do not depend on each other:

- a tensor ``[B, ...]``: ``B`` independent samples, cut into chunks of ``chunk_size``;
- a tuple ``(x, graph)`` (or any tuple of forward arguments): one forward pass whose output rows
  are the kernel's inputs, e.g. the ``N`` nodes of a framed graph for a node-level model;
- a list of such tuples: one forward pass each (graph-level models give one row per graph).

The fused aggregation of :class:`~meshgdl.nn.GemConv` and :class:`~meshgdl.nn.IsoConv` carries its
own ``vmap``, ``jvp`` and ``vjp`` rules (:mod:`meshgdl._transforms`), so fused layers give the same
kernel as ``fused=False``.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch.func import functional_call, jacrev, jvp, vjp, vmap


def model_outputs(model: torch.nn.Module, params: dict, inputs) -> Tensor:
    """``model`` with parameters ``params`` on ``inputs`` (any of the three forms), as ``[n, O]``."""
    buffers = dict(model.named_buffers())
    if isinstance(inputs, list):
        return torch.cat([model_outputs(model, params, item) for item in inputs])
    if isinstance(inputs, Tensor):
        out = functional_call(model, (params, buffers), (inputs,))
        return out.reshape(inputs.shape[0], -1)
    if isinstance(inputs, tuple):
        out = functional_call(model, (params, buffers), inputs)
        return out.reshape(1, -1) if out.dim() <= 1 else out.reshape(out.shape[0], -1)
    raise TypeError(f"inputs must be a tensor [B, ...], a tuple of forward arguments such as (x, graph), "
                    f"or a list of such tuples; got {type(inputs).__name__}")


def _pieces(inputs, chunk_size: int | None) -> list:
    if isinstance(inputs, Tensor):
        if inputs.shape[0] == 0:
            raise ValueError("inputs has no samples (its first dimension is 0)")
        return list(inputs.split(chunk_size)) if chunk_size else [inputs]
    if isinstance(inputs, list):
        if not inputs:
            raise ValueError("inputs is an empty list; give at least one (x, graph) tuple")
        step = chunk_size or len(inputs)
        return [inputs[i:i + step] for i in range(0, len(inputs), step)]
    return [inputs]


def _jacobian(model, params, piece, vmap_chunk_size):
    jac = jacrev(lambda p: model_outputs(model, p, piece), chunk_size=vmap_chunk_size)(params)
    return [j.flatten(2) for j in jac.values()]  # each [n, O, P_k]


def _block_jacobian(model, params, piece1, piece2, trace, vmap_chunk_size):
    jac1 = _jacobian(model, params, piece1, vmap_chunk_size)
    jac2 = jac1 if piece2 is piece1 else _jacobian(model, params, piece2, vmap_chunk_size)
    eq = "aip,bip->ab" if trace else "aip,bjp->abij"
    return sum(torch.einsum(eq, j1, j2) for j1, j2 in zip(jac1, jac2))


def _block_ntvp(model, params, piece1, piece2, trace, vmap_chunk_size):
    out2, pullback = vjp(lambda p: model_outputs(model, p, piece2), params)
    n2, o = out2.shape

    def column(cotangent):
        (direction,) = pullback(cotangent)
        return jvp(lambda p: model_outputs(model, p, piece1), (params,), (direction,))[1]

    basis = torch.eye(n2 * o, dtype=out2.dtype, device=out2.device).reshape(n2 * o, n2, o)
    cols = vmap(column, chunk_size=vmap_chunk_size)(basis)  # [(b, j), a, i]
    theta = cols.reshape(n2, o, -1, o).permute(2, 0, 3, 1)  # [a, b, i, j]
    return theta.diagonal(dim1=2, dim2=3).sum(-1) if trace else theta


def empirical_ntk(model: torch.nn.Module, x1, x2=None, *, method: str = "jacobian", trace: bool = True,
                  chunk_size: int | None = None, vmap_chunk_size: int | None = None) -> Tensor:
    r"""The empirical NTK :math:`\Theta(x_1, x_2) = J(x_1) J(x_2)^\top` of ``model`` at its current
    parameters (all that require grad; buffers stay fixed).

    Args:
        model (torch.nn.Module): any module; put it in ``eval()`` mode if it has dropout or batch
            norm, since the kernel assumes a deterministic function of the parameters.
        x1: a tensor ``[B1, ...]``, a tuple ``(x, graph)`` or a list of tuples (see the module
            docstring).
        x2: the same for the second argument; ``None`` for ``x1`` (default: ``None``)
        method (str): ``"jacobian"`` (contract Jacobians) or ``"ntvp"`` (NTK-vector products,
            never forming the Jacobian). (default: ``"jacobian"``)
        trace (bool): sum over the output index, :math:`\sum_i \Theta_{ab,ii}`. (default: ``True``)
        chunk_size (int, optional): samples (or list items) per forward pass; bounds memory.
            (default: all at once)
        vmap_chunk_size (int, optional): output directions processed together by ``vmap``.
            (default: all at once)

    Shapes:
        - output: :math:`[n_1, n_2]` with ``trace``, else :math:`[n_1, n_2, O, O]`, where
          :math:`n` counts the output rows (samples, nodes or graphs) and :math:`O` the flattened
          outputs per row.
    """
    if method not in ("jacobian", "ntvp"):
        raise ValueError(f"method must be 'jacobian' or 'ntvp', got {method!r}")
    for name, size in (("chunk_size", chunk_size), ("vmap_chunk_size", vmap_chunk_size)):
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"{name} must be a positive integer or None, got {size!r}")
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    if not params:
        raise ValueError(f"{type(model).__name__} has no parameters that require grad, so its NTK is zero")
    block = _block_jacobian if method == "jacobian" else _block_ntvp
    pieces1 = _pieces(x1, chunk_size)
    pieces2 = pieces1 if x2 is None else _pieces(x2, chunk_size)
    rows = [torch.cat([block(model, params, p1, p2, trace, vmap_chunk_size) for p2 in pieces2], dim=1)
            for p1 in pieces1]
    return torch.cat(rows, dim=0)
