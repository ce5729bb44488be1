"""The slow, obviously correct empirical NTK: one ``torch.autograd.grad`` call per output scalar.

Kept beside :func:`~meshgdl.ntk.empirical_ntk` so that tests hold the fast paths equal to it.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .empirical import model_outputs


def _jacobian_rows(model: torch.nn.Module, inputs) -> Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    named = dict((k, p) for k, p in model.named_parameters() if p.requires_grad)
    out = model_outputs(model, named, inputs)  # [n, O], differentiable in params
    rows = []
    for a in range(out.shape[0]):
        per_output = []
        for i in range(out.shape[1]):
            grads = torch.autograd.grad(out[a, i], params, retain_graph=True, allow_unused=True)
            per_output.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                                         for g, p in zip(grads, params)]))
        rows.append(torch.stack(per_output))
    return torch.stack(rows)  # [n, O, P]


def empirical_ntk_reference(model: torch.nn.Module, x1, x2=None, trace: bool = True) -> Tensor:
    """:func:`~meshgdl.ntk.empirical_ntk` by explicit per-output gradients; same arguments and shapes."""
    jac1 = _jacobian_rows(model, x1)
    jac2 = jac1 if x2 is None else _jacobian_rows(model, x2)
    if trace:
        return torch.einsum("aip,bip->ab", jac1, jac2)
    return torch.einsum("aip,bjp->abij", jac1, jac2)
