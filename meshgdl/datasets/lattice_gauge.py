r"""Monte Carlo gauge fields with the Wilson action, and a cached PyG data set of them.

The Wilson action of a field :math:`U_{x,\mu}` in U(1) or SU(n) is

.. math::
    S[U] = \beta \sum_x \sum_{\mu<\nu} \Big(1 - \frac1n \mathrm{Re\,tr}\, U_{x,\mu\nu}\Big).

:func:`wilson_metropolis` samples :math:`e^{-S}` with a multi-hit Metropolis update: the links of
one direction on one checkerboard colour share no plaquette, so they are updated together. In 2D
the mean plaquette has the exact value :func:`exact_mean_plaquette_2d` (plaquettes of the infinite
lattice are independent): :math:`I_1(\beta)/I_0(\beta)` for U(1), :math:`I_2(\beta)/I_1(\beta)`
for SU(2).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import groups

__all__ = ["wilson_metropolis", "exact_mean_plaquette_2d", "LatticeGaugeDataset"]


def wilson_metropolis(group: str, shape, beta: float, num_configs: int, *, n_therm: int = 200,
                      n_decor: int = 10, n_hits: int = 8, chains: int = 1, step: float | None = None,
                      seed: int = 0, start: str = "cold", dtype=torch.complex128,
                      progress: bool = False) -> Tensor:
    r"""Sample gauge fields from :math:`e^{-S[U]}` with checkerboard multi-hit Metropolis.

    Args:
        group (str): ``"U1"``, ``"SU2"``, ``"SU3"``, ...
        shape (tuple of int): the lattice, every extent even (for the checkerboard), any dimension.
        beta (float): the inverse coupling :math:`\beta \ge 0`.
        num_configs (int): how many configurations to return.
        n_therm (int): warm-up sweeps before the first configuration; the proposal width is tuned
            towards 50% acceptance during the first half of them. (default: ``200``)
        n_decor (int): sweeps between two configurations of one chain. (default: ``10``)
        n_hits (int): Metropolis proposals per link and sweep (the staples are computed once).
            (default: ``8``)
        chains (int): independent chains run side by side; configuration ``c`` comes from chain
            ``c % chains``. (default: ``1``)
        step (float, optional): the proposal width; tuned if ``None``. (default: ``None``)
        seed (int): seed of the random generator; the output depends only on the arguments.
            (default: ``0``)
        start (str): ``"cold"`` (identity links) or ``"hot"`` (Haar-random). (default: ``"cold"``)
        progress (bool): show a progress bar. (default: ``False``)

    Returns:
        Links :math:`U_{x,\mu}` of shape :math:`[num\_configs, *shape, d, n, n]`.
    """
    from tqdm.auto import tqdm

    shape = _check_even(shape)
    if beta < 0 or not math.isfinite(beta):
        raise ValueError(f"beta must be a finite number >= 0, got {beta}")
    if num_configs < 1 or chains < 1 or n_hits < 1 or n_decor < 1 or n_therm < 0:
        raise ValueError("num_configs, chains, n_hits and n_decor must be >= 1 and n_therm >= 0")
    if start not in ("cold", "hot"):
        raise ValueError(f"start must be 'cold' or 'hot', got {start!r}")
    n, d = groups.group_size(group), len(shape)
    gen = torch.Generator().manual_seed(seed)
    size = (chains, *shape, d)
    u = (groups.identity(group, size, dtype=dtype) if start == "cold"
         else groups.random_element(group, size, generator=gen, dtype=dtype))
    parity = torch.stack(torch.meshgrid(*[torch.arange(s) for s in shape], indexing="ij")).sum(0) % 2
    masks = [(parity == c)[None, ..., None, None] for c in (0, 1)]
    tuned = step is None
    step = 0.5 if step is None else step
    per_chain = -(-num_configs // chains)
    total = n_therm + per_chain * n_decor
    out = []
    with tqdm(total=total, disable=not progress, desc=f"{group} beta={beta:g} {shape}") as bar:
        for sweep in range(total):
            accepted = _sweep(u, group, beta, n, d, masks, n_hits, step, gen)
            if tuned and sweep < n_therm // 2:
                step = min(max(step * math.exp(accepted - 0.5), 1e-3), 4.0)
            if sweep >= n_therm and (sweep - n_therm + 1) % n_decor == 0:
                out.append(u.clone())
            bar.update(1)
            bar.set_postfix(acceptance=f"{accepted:.2f}", refresh=False)
    return torch.stack(out).flatten(0, 1)[:num_configs]


def _sweep(u: Tensor, group, beta, n, d, masks, n_hits, step, gen) -> float:
    accepted = 0.0
    axes = list(range(1, d + 1))
    for mu in range(d):
        for mask in masks:
            staple = _staples(u, mu, d, axes)
            link = u[..., mu, :, :]
            for _ in range(n_hits):
                proposal = groups.random_near_identity(group, link.shape[:-2], step, generator=gen,
                                                       dtype=u.dtype) @ link
                diff = torch.diagonal((proposal - link) @ staple, dim1=-2, dim2=-1).sum(-1).real
                delta = -beta / n * diff
                accept = (torch.rand(delta.shape, generator=gen, dtype=delta.dtype) < torch.exp(-delta))
                accept = accept[..., None, None] & mask
                link = torch.where(accept, proposal, link)
                accepted += float(accept.sum()) / float(mask.sum() * u.shape[0])
            u[..., mu, :, :] = link
    return accepted / (2 * d * n_hits)


def _staples(u: Tensor, mu: int, d: int, axes) -> Tensor:
    r"""Sum of staples :math:`A_{x,\mu}` with :math:`\sum_P \mathrm{tr}\,P = \mathrm{tr}(U_{x,\mu} A_{x,\mu})`."""
    def at(field, offset):  # field[x + offset]
        return torch.roll(field, [-o for o in offset], axes)

    def e(*pairs):
        off = [0] * d
        for m, s in pairs:
            off[m] += s
        return off

    dag = lambda m: m.conj().transpose(-1, -2)  # noqa: E731
    total = 0
    for nu in range(d):
        if nu == mu:
            continue
        u_mu, u_nu = u[..., mu, :, :], u[..., nu, :, :]
        up = at(u_nu, e((mu, 1))) @ dag(at(u_mu, e((nu, 1)))) @ dag(u_nu)
        down = dag(at(u_nu, e((mu, 1), (nu, -1)))) @ dag(at(u_mu, e((nu, -1)))) @ at(u_nu, e((nu, -1)))
        total = total + up + down
    return total


def exact_mean_plaquette_2d(group: str, beta: float, volume: int | None = None) -> float:
    r"""The exact :math:`\langle \frac1n \mathrm{Re\,tr}\, U_{\mu\nu} \rangle` of the 2D Wilson action.

    In infinite volume (``volume=None``) it is :math:`I_1(\beta)/I_0(\beta)` for U(1) and
    :math:`I_2(\beta)/I_1(\beta)` for SU(2). On a periodic lattice of ``volume`` = :math:`V`
    plaquettes the character expansion on the torus gives :math:`Z \propto \sum_r c_r^V`, so

    .. math::
        \text{U(1)}: \frac{\sum_{r\in\mathbb Z} I_r^{V-1} I_r'}{\sum_r I_r^V}, \qquad
        \text{SU(2)}: \frac{\sum_{k\ge1} I_k^{V-1} I_k'}{\sum_k I_k^V} - \frac1\beta,

    with :math:`I_r' = (I_{r-1} + I_{r+1})/2`; the corrections fall like :math:`(c_1/c_0)^V`.
    """
    import numpy as np
    from scipy.special import ive

    n = groups.group_size(group)
    if n not in (1, 2):
        raise ValueError(f"the exact 2D result is implemented for U1 and SU2, not {group}")
    if beta <= 0:
        return 0.0
    if volume is None:
        return float(ive(1, beta) / ive(0, beta)) if n == 1 else float(ive(2, beta) / ive(1, beta))
    r = np.arange(0 if n == 1 else 1, int(4 * beta) + 60)
    c, dc = ive(r, beta), (ive(r - 1, beta) + ive(r + 1, beta)) / 2
    weight = volume * np.log(np.maximum(c, 1e-300))
    if n == 1:  # r and -r contribute alike
        weight = weight + np.log(np.where(r == 0, 1.0, 2.0))
    weight = np.exp(weight - weight.max())
    mean = float((weight * dc / c).sum() / weight.sum())
    return mean if n == 1 else mean - 1 / beta


def _check_even(shape) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"lattice sizes must be positive, got shape {shape}")
    if any(s % 2 for s in shape):
        raise ValueError(f"the checkerboard update needs even lattice sizes, got shape {shape}")
    return shape
