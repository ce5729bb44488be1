r"""Metrics of emergent equivariance: how far a classifier's outputs are from invariant.

Every function takes the outputs on a whole group orbit, ``[|G|, B, C]`` with index 0 the
untransformed input (:func:`~meshgdl.ensembles.orbit`), as probabilities (softmax already taken).
"""
from __future__ import annotations

import torch
from torch import Tensor


def _check_orbit(probs: Tensor) -> None:
    if probs.dim() != 3:
        raise ValueError(f"expected outputs on an orbit [|G|, B, C] (index 0 the identity), got {tuple(probs.shape)}")


def orbit_same_predictions(probs: Tensor) -> Tensor:
    r"""Per input, how many of the :math:`|G|` copies :math:`g x` get the class of :math:`x` itself
    (the identity included, so between 1 and :math:`|G|`; :math:`|G|` for an invariant model).

    Shapes:
        - input: :math:`[|G|, B, C]`; output: :math:`[B]` (integers).
    """
    _check_orbit(probs)
    labels = probs.argmax(-1)
    return (labels == labels[0]).sum(0)


def orbit_divergence(probs: Tensor, eps: float = 1e-12) -> Tensor:
    r"""Per input, the mean over :math:`g` of :math:`\mathrm{KL}(p(x) \,\|\, p(g x))`, zero for an invariant model.

    Shapes:
        - input: :math:`[|G|, B, C]`; output: :math:`[B]`.
    """
    _check_orbit(probs)
    p = probs[0].clamp_min(eps)
    return (p * (p.log() - probs.clamp_min(eps).log())).sum(-1).mean(0)


def accuracy(probs: Tensor, labels: Tensor) -> float:
    """Fraction of rows of ``probs`` ``[B, C]`` whose arg max is ``labels`` ``[B]``."""
    return (probs.argmax(-1) == labels).double().mean().item()


def ensemble_size_curve(member_probs: Tensor, sizes, labels: Tensor | None = None) -> list[dict]:
    r"""The metrics of ensembles of each size, with their spread over disjoint groups of members.

    The ensemble's output is the mean of its members' probabilities. For size :math:`s`, the
    :math:`\lfloor M/s \rfloor` disjoint groups of consecutive members each form one ensemble.

    Args:
        member_probs (Tensor): each member's probabilities on orbits, :math:`[M, |G|, B, C]`.
        sizes (iterable of int): ensemble sizes, each at most :math:`M`.
        labels (Tensor, optional): true classes :math:`[B]`, for the accuracy on untransformed inputs.

    Returns:
        One dict per size: ``size``, ``ensembles`` (how many), and the mean and standard deviation
        over ensembles of ``orbit_same`` and ``divergence`` (each averaged over inputs) and of
        ``accuracy`` (when ``labels`` is given).
    """
    if member_probs.dim() != 4:
        raise ValueError(f"member_probs must be [M, |G|, B, C], got {tuple(member_probs.shape)}")
    rows = []
    for s in sizes:
        if not 1 <= s <= member_probs.shape[0]:
            raise ValueError(f"ensemble size {s} is not between 1 and the {member_probs.shape[0]} members")
        values = {"orbit_same": [], "divergence": [], "accuracy": []}
        for start in range(0, member_probs.shape[0] - s + 1, s):
            probs = member_probs[start:start + s].mean(0)
            values["orbit_same"].append(orbit_same_predictions(probs).double().mean().item())
            values["divergence"].append(orbit_divergence(probs).mean().item())
            if labels is not None:
                values["accuracy"].append(accuracy(probs[0], labels))
        row = {"size": s, "ensembles": len(values["orbit_same"])}
        for name, v in values.items():
            if v:
                t = torch.tensor(v, dtype=torch.float64)
                row[name] = t.mean().item()
                row[f"{name}_std"] = t.std().item() if len(v) > 1 else 0.0
        rows.append(row)
    return rows
