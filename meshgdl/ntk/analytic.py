r"""Infinite-width NNGP and NTK kernels of fully connected and isotropic graph networks.

The networks are those of :mod:`meshgdl.ntk.wide`, in NTK parametrisation with weight scale
:math:`\sigma_w` and bias scale :math:`\sigma_b`. For the fully connected network (Jacot, Gabriel
and Hongler 2018; Arora et al. 2019, with biases)

.. math::
    \Sigma^{1} = \sigma_w^2 \frac{x \cdot x'}{d} + \sigma_b^2, \qquad \Theta^{1} = \Sigma^{1},

    \Sigma^{l+1} = \sigma_w^2\, \mathbb{E}[\phi(u)\phi(v)] + \sigma_b^2, \qquad
    \Theta^{l+1} = \Sigma^{l+1} + \sigma_w^2\, \mathbb{E}[\phi'(u)\phi'(v)]\, \Theta^{l},

with :math:`(u, v) \sim \mathcal{N}(0, \Sigma^l)` on the pair :math:`(x, x')`. ReLU gives the
arc-cosine kernels (:math:`\cos\vartheta = \Sigma_{12}/\sqrt{\Sigma_{11}\Sigma_{22}}`)

.. math::
    \mathbb{E}[\phi\phi] = \frac{\sqrt{\Sigma_{11}\Sigma_{22}}}{2\pi}(\sin\vartheta
    + (\pi - \vartheta)\cos\vartheta), \qquad \mathbb{E}[\phi'\phi'] = \frac{\pi - \vartheta}{2\pi},

and erf (Williams 1997)

.. math::
    \mathbb{E}[\phi\phi] = \frac{2}{\pi}\arcsin\frac{2\Sigma_{12}}{\sqrt{(1 + 2\Sigma_{11})(1 + 2\Sigma_{22})}},
    \qquad \mathbb{E}[\phi'\phi'] = \frac{4}{\pi\sqrt{(1 + 2\Sigma_{11})(1 + 2\Sigma_{22}) - 4\Sigma_{12}^2}}.

The isotropic graph network (:class:`~meshgdl.ntk.NTKGraphNet`, the graph NTK of Du et al. 2019 for
a layer with separate self and neighbour weights and a linear aggregation :math:`A`) replaces every
kernel :math:`K` that enters a layer by :math:`K + A K A'^\top`, on pairs of nodes.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

ACTIVATIONS = ("relu", "erf")


class Kernels(NamedTuple):
    """The NNGP kernel (the covariance of the outputs at initialisation) and the NTK, each ``[n1, n2]``."""

    nngp: Tensor
    ntk: Tensor


def gaussian_expectations(k11: Tensor, k22: Tensor, k12: Tensor, activation: str = "relu") -> tuple[Tensor, Tensor]:
    r""":math:`(\mathbb{E}[\phi(u)\phi(v)], \mathbb{E}[\phi'(u)\phi'(v)])` for centred Gaussians with
    variances ``k11``, ``k22`` and covariance ``k12`` (broadcast together), in closed form."""
    if activation == "relu":
        norm = (k11 * k22).clamp_min(torch.finfo(k12.dtype).tiny).sqrt()
        cos = (k12 / norm).clamp(-1.0, 1.0)
        theta = torch.arccos(cos)
        return (norm / (2 * math.pi) * (torch.sin(theta) + (math.pi - theta) * cos),
                (math.pi - theta) / (2 * math.pi))
    if activation == "erf":
        det = (1 + 2 * k11) * (1 + 2 * k22)
        return (2 / math.pi * torch.arcsin((2 * k12 / det.sqrt()).clamp(-1.0, 1.0)),
                4 / math.pi / (det - 4 * k12**2).sqrt())
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def _diagonal_expectations(k: Tensor, activation: str) -> tuple[Tensor, Tensor]:
    # u = v: exact for the ReLU, whose arccos would turn a rounding error of 1e-16 in the cosine
    # into an angle of 1e-8
    if activation == "relu":
        return k / 2, torch.full_like(k, 0.5)
    return gaussian_expectations(k, k, k, activation)


def _check(depth, activation, weight_std, bias_std):
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ValueError(f"depth (the number of hidden layers) must be an integer >= 0, got {depth!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if not (weight_std > 0 and bias_std >= 0):
        raise ValueError(f"need weight_std > 0 and bias_std >= 0, got {weight_std}, {bias_std}")


def _recursion(linear: Tensor, mix, depth: int, activation: str, weight_std: float, bias_std: float) -> Kernels:
    """Joint kernels over all rows; ``linear`` is the input Gram matrix over d, ``mix`` the layer's aggregation."""
    w2, b2 = weight_std**2, bias_std**2
    sigma = w2 * mix(linear) + b2
    theta = sigma
    for _ in range(depth):
        diag = sigma.diagonal()
        e, e_dot = gaussian_expectations(diag[:, None], diag[None, :], sigma, activation)
        e.diagonal().copy_(_diagonal_expectations(diag, activation)[0])
        e_dot.diagonal().copy_(_diagonal_expectations(diag, activation)[1])
        sigma = w2 * mix(e) + b2
        theta = sigma + w2 * mix(e_dot * theta)
    return Kernels(sigma, theta)


def _as_2d(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() < 2:
        raise ValueError(f"{name} must be a tensor [n, ...] of inputs, got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    return x.reshape(x.shape[0], -1)


def mlp_kernels(x1: Tensor, x2: Tensor | None = None, *, depth: int = 1, activation: str = "relu",
                weight_std: float = 1.0, bias_std: float = 0.0) -> Kernels:
    r"""NNGP and NTK of the infinitely wide fully connected network :class:`~meshgdl.ntk.NTKMLP`.

    Args:
        x1 (Tensor): inputs :math:`[n_1, \dots]`, flattened to :math:`[n_1, d]`.
        x2 (Tensor, optional): inputs :math:`[n_2, \dots]`; ``None`` for ``x1``. (default: ``None``)
        depth (int): hidden layers (nonlinearities). (default: ``1``)
        activation (str): ``"relu"`` or ``"erf"``. (default: ``"relu"``)
        weight_std (float): :math:`\sigma_w`. (default: ``1.0``)
        bias_std (float): :math:`\sigma_b`. (default: ``0.0``)

    Shapes:
        - output: ``Kernels(nngp, ntk)``, each :math:`[n_1, n_2]`, the kernel of each single output.
    """
    _check(depth, activation, weight_std, bias_std)
    a = _as_2d(x1, "x1")
    b = a if x2 is None else _as_2d(x2, "x2")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"x1 has {a.shape[1]} features per input and x2 {b.shape[1]}; they must match")
    w2, b2 = weight_std**2, bias_std**2
    # the cross block and the two diagonals are all a layer needs: no [n1 + n2]^2 joint matrix
    sigma, d1, d2 = (w2 * k / a.shape[1] + b2 for k in (a @ b.T, (a * a).sum(1), (b * b).sum(1)))
    theta, t1, t2 = sigma, d1, d2
    for _ in range(depth):
        e, e_dot = gaussian_expectations(d1[:, None], d2[None, :], sigma, activation)
        (e1, e1_dot), (e2, e2_dot) = (_diagonal_expectations(d, activation) for d in (d1, d2))
        if x2 is None:  # a point with itself: the exact diagonal, as the sums of a @ a.T may round apart
            e.diagonal().copy_(e1)
            e_dot.diagonal().copy_(e1_dot)
        sigma, d1, d2 = w2 * e + b2, w2 * e1 + b2, w2 * e2 + b2
        theta, t1, t2 = sigma + w2 * e_dot * theta, d1 + w2 * e1_dot * t1, d2 + w2 * e2_dot * t2
    return Kernels(sigma, theta)


def graph_kernels(x1: Tensor, a1: Tensor, x2: Tensor | None = None, a2: Tensor | None = None, *,
                  depth: int = 1, activation: str = "relu", weight_std: float = 1.0, bias_std: float = 0.0,
                  pool1: Tensor | None = None, pool2: Tensor | None = None) -> Kernels:
    r"""NNGP and NTK of the infinitely wide isotropic graph network :class:`~meshgdl.ntk.NTKGraphNet`.

    Each layer maps :math:`g` to :math:`\frac{\sigma_w}{\sqrt{n}}(U g_i + V (A g)_i) + \sigma_b b`, so
    every kernel entering a layer becomes :math:`K + A_1 K A_2^\top`. Several graphs are one
    block-diagonal :math:`A`; graph-level outputs pool nodes linearly with ``pool`` (:math:`P K P'^\top`).

    Args:
        x1 (Tensor): node features :math:`[N_1, d]`.
        a1 (Tensor): the aggregation :math:`[N_1, N_1]` (:func:`~meshgdl.ntk.mean_aggregation`).
        x2, a2 (Tensor, optional): the second graph; ``None`` for the first. (default: ``None``)
        depth, activation, weight_std, bias_std: as :func:`mlp_kernels`.
        pool1, pool2 (Tensor, optional): readout matrices :math:`[G, N]` (rows of :math:`1/N_g` for
            mean pooling); ``None`` for node-level kernels. (default: ``None``)

    Shapes:
        - output: ``Kernels(nngp, ntk)``, each :math:`[N_1, N_2]` (or :math:`[G_1, G_2]` pooled).
    """
    _check(depth, activation, weight_std, bias_std)
    if x2 is None and a2 is not None:
        raise ValueError("a2 was given without x2; give both (or neither, for the first graph again)")
    x2, a2 = (x1, a1) if x2 is None else (x2, a2)
    for x, a, name in ((x1, a1, "1"), (x2, a2, "2")):
        if a is None or a.shape != (x.shape[0], x.shape[0]):
            raise ValueError(f"a{name} must be the [N, N] aggregation of x{name}'s {x.shape[0]} nodes, got "
                             f"{None if a is None else tuple(a.shape)}; build it with mean_aggregation(graph)")
    n1 = x1.shape[0]
    x = torch.cat([_as_2d(x1, "x1"), _as_2d(x2, "x2")])
    a = torch.block_diag(a1, a2).to(x.dtype)
    joint = _recursion(x @ x.T / x.shape[1], lambda k: k + a @ k @ a.T, depth, activation, weight_std, bias_std)
    out = []
    for k in joint:
        k = k[:n1, n1:]
        if pool1 is not None:
            k = pool1.to(k.dtype) @ k
        if pool2 is not None:
            k = k @ pool2.to(k.dtype).T
        out.append(k)
    return Kernels(*out)
