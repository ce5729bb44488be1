r"""Monte Carlo gauge fields with the Wilson action, and a cached PyG data set of them.

The Wilson action of a field :math:`U_{x,\mu}` in U(1) or SU(n) is

.. math::
    S[U] = \beta \sum_x \sum_{\mu<\nu} \Big(1 - \frac1n \mathrm{Re\,tr}\, U_{x,\mu\nu}\Big).

:func:`wilson_metropolis` samples :math:`e^{-S}` with a multi-hit Metropolis update or, for SU(2),
a heat bath: the links of one direction on one checkerboard colour share no plaquette, so they are
updated together. In 2D
the mean plaquette has the exact value :func:`exact_mean_plaquette_2d` (plaquettes of the infinite
lattice are independent): :math:`I_1(\beta)/I_0(\beta)` for U(1), :math:`I_2(\beta)/I_1(\beta)`
for SU(2).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import groups

__all__ = ["wilson_metropolis", "exact_mean_plaquette_2d"]


def wilson_metropolis(group: str, shape, beta: float, num_configs: int, *, n_therm: int = 200,
                      n_decor: int = 10, n_hits: int = 8, chains: int = 1, step: float | None = None,
                      seed: int = 0, start: str = "cold", update: str = "auto",
                      dtype=torch.complex128, progress: bool = False) -> Tensor:
    r"""Sample gauge fields from :math:`e^{-S[U]}` with checkerboard updates: multi-hit Metropolis,
    or for SU(2) the heat bath of Kennedy and Pendleton (Phys. Lett. B 156, 393, 1985).

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
        update (str): ``"metropolis"``, ``"heatbath"`` (SU(2) only: every link drawn afresh from
            its conditional distribution), or ``"auto"``: the heat bath for SU(2), Metropolis
            otherwise. (default: ``"auto"``)
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
    if update == "auto":
        update = "heatbath" if n == 2 else "metropolis"
    if update not in ("metropolis", "heatbath") or (update == "heatbath" and n != 2):
        raise ValueError(f"update must be 'auto', 'metropolis' or (for SU2) 'heatbath', got {update!r} for {group}")
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
            if update == "heatbath":
                accepted = _heatbath_sweep(u, beta, d, masks, gen)
            else:
                accepted = _sweep(u, group, beta, n, d, masks, n_hits, step, gen)
                if sweep % 50 == 49:  # products of many proposals drift from the group by rounding
                    u.copy_(groups.project_to_group(u, group))
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


def _heatbath_sweep(u: Tensor, beta, d, masks, gen) -> float:
    r"""SU(2) heat bath: with the staple sum :math:`A = k V` (:math:`k = \sqrt{\det A}`,
    :math:`V \in SU(2)`), :math:`X = U V` has density :math:`\propto e^{\beta k\, \mathrm{tr} X/2}`,
    i.e. :math:`X = a_0 + i\, \vec a \cdot \vec\sigma` with :math:`P(a_0) \propto
    \sqrt{1 - a_0^2}\, e^{\beta k a_0}` and :math:`\vec a` uniform on its sphere; :math:`U = X V^\dagger`."""
    axes = list(range(1, d + 1))
    real = u.real.dtype
    for mu in range(d):
        for mask in masks:
            staple = _staples(u, mu, d, axes)
            k = torch.linalg.det(staple).real.clamp_min(0).sqrt()
            v = staple / k.clamp_min(torch.finfo(real).tiny)[..., None, None]
            a0 = _kennedy_pendleton(beta * k, gen)
            direction = torch.randn(*a0.shape, 3, generator=gen, dtype=real)
            a = direction / direction.norm(dim=-1, keepdim=True) * (1 - a0**2).clamp_min(0).sqrt()[..., None]
            x = torch.stack([torch.stack([torch.complex(a0, a[..., 2]), torch.complex(a[..., 1], a[..., 0])], -1),
                             torch.stack([torch.complex(-a[..., 1], a[..., 0]), torch.complex(a0, -a[..., 2])], -1)], -2)
            new = x.to(u.dtype) @ v.conj().transpose(-1, -2)
            u[..., mu, :, :] = torch.where(mask, new, u[..., mu, :, :])
    return 1.0


def _kennedy_pendleton(alpha: Tensor, gen) -> Tensor:
    """Samples of a_0 with density sqrt(1 - a_0^2) exp(alpha a_0) on [-1, 1], by rejection.

    Kennedy-Pendleton for alpha >= 1; below, a_0 from the semicircle (the first coordinate of a
    uniform point on S^3) accepted with probability exp(alpha (a_0 - 1)), which stays efficient
    where Kennedy-Pendleton's acceptance falls. Each round draws only for the sites still waiting.
    """
    flat = alpha.flatten().clamp_min(0)
    out = torch.empty_like(flat)
    todo = torch.arange(flat.numel())
    while todo.numel():
        a = flat[todo]
        r = 1 - torch.rand(4, todo.numel(), generator=gen, dtype=a.dtype)  # in (0, 1]
        a_safe = a.clamp_min(1.0)
        lam2 = -(torch.log(r[0]) + torch.cos(2 * math.pi * r[1]) ** 2 * torch.log(r[2])) / (2 * a_safe)
        kp_ok = r[3] ** 2 <= 1 - lam2
        g = torch.randn(4, todo.numel(), generator=gen, dtype=a.dtype)
        semicircle = g[0] / g.norm(dim=0)
        sc_ok = r[3] <= torch.exp(a * (semicircle - 1))
        big = a >= 1
        value = torch.where(big, 1 - 2 * lam2, semicircle)
        accept = torch.where(big, kp_ok, sc_ok)
        out[todo[accept]] = value[accept]
        todo = todo[~accept]
    return out.view(alpha.shape)


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
