r"""The Ising model on a periodic hypercubic lattice: checkerboard Metropolis, and Onsager's exact
results for the square lattice.

The energy is :math:`H = -J \sum_{\langle xy \rangle} s_x s_y` over nearest-neighbour pairs, with
:math:`s_x = \pm 1` and temperature :math:`T` in units of :math:`J / k_B`. In 2D the critical
temperature is :math:`T_c = 2 / \ln(1 + \sqrt2) \approx 2.269`.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .lattice_gauge import _check_even

__all__ = ["ising_metropolis", "onsager_energy", "onsager_magnetization", "ising_energy",
           "ISING_CRITICAL_TEMPERATURE"]

ISING_CRITICAL_TEMPERATURE = 2 / math.log(1 + math.sqrt(2))


def ising_metropolis(shape, temperature: float, num_configs: int, *, n_therm: int = 500,
                     n_decor: int = 5, chains: int = 1, seed: int = 0, start: str = "cold",
                     progress: bool = False) -> Tensor:
    r"""Sample Ising spins from :math:`e^{-H/T}` with checkerboard Metropolis (J = 1).

    Args:
        shape (tuple of int): the lattice, every extent even, any dimension.
        temperature (float): :math:`T > 0`.
        num_configs (int): how many configurations to return.
        n_therm (int): warm-up sweeps. (default: ``500``)
        n_decor (int): sweeps between two configurations of one chain. (default: ``5``)
        chains (int): independent chains side by side; configuration ``c`` comes from chain
            ``c % chains``. (default: ``1``)
        seed (int): seed of the random generator. (default: ``0``)
        start (str): ``"cold"`` (all spins up) or ``"hot"`` (random). (default: ``"cold"``)
        progress (bool): show a progress bar. (default: ``False``)

    Returns:
        Spins :math:`\pm 1` as ``int8``, shape :math:`[num\_configs, *shape]`.
    """
    from tqdm.auto import tqdm

    shape = _check_even(shape)
    if not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
    if num_configs < 1 or chains < 1 or n_decor < 1 or n_therm < 0:
        raise ValueError("num_configs, chains and n_decor must be >= 1 and n_therm >= 0")
    if start not in ("cold", "hot"):
        raise ValueError(f"start must be 'cold' or 'hot', got {start!r}")
    gen = torch.Generator().manual_seed(seed)
    d = len(shape)
    axes = list(range(1, d + 1))
    spins = torch.ones(chains, *shape, dtype=torch.float64)
    if start == "hot":
        spins = torch.where(torch.rand(spins.shape, generator=gen) < 0.5, -1.0, 1.0).to(torch.float64)
    parity = torch.stack(torch.meshgrid(*[torch.arange(s) for s in shape], indexing="ij")).sum(0) % 2
    per_chain = -(-num_configs // chains)
    total = n_therm + per_chain * n_decor
    out = []
    with tqdm(total=total, disable=not progress, desc=f"Ising T={temperature:g} {shape}") as bar:
        for sweep in range(total):
            for colour in (0, 1):
                field = sum(spins.roll(s, a) for a in axes for s in (1, -1))
                delta = 2 * spins * field
                flip = (torch.rand(spins.shape, generator=gen, dtype=torch.float64)
                        < torch.exp(-delta / temperature)) & (parity == colour)
                spins = torch.where(flip, -spins, spins)
            if sweep >= n_therm and (sweep - n_therm + 1) % n_decor == 0:
                out.append(spins.to(torch.int8))
            bar.update(1)
    return torch.stack(out).flatten(0, 1)[:num_configs]


def ising_energy(spins: Tensor) -> Tensor:
    r"""Energy per site :math:`-\frac1N \sum_{\langle xy\rangle} s_x s_y` of spins
    :math:`[B, *shape]` (every axis after the first is a lattice axis): ``[B]``."""
    s = spins.to(torch.float64)
    axes = range(1, s.dim())
    return -sum((s * s.roll(-1, a)) for a in axes).flatten(1).mean(1)


def onsager_energy(temperature: float) -> float:
    r"""Exact energy per site of the infinite square lattice (J = 1):

    .. math::
        u = -\coth(2/T) \Big[1 + \frac{2}{\pi} (2 \tanh^2(2/T) - 1) K(k)\Big],
        \qquad k = \frac{2 \sinh(2/T)}{\cosh^2(2/T)},

    with :math:`K` the complete elliptic integral of the first kind.
    """
    from scipy.special import ellipk

    b = 2.0 / temperature
    k = 2 * math.sinh(b) / math.cosh(b) ** 2
    # at T_c, K(k) diverges logarithmically while its prefactor vanishes linearly
    singular = 0.0 if k * k >= 1 else (2 * math.tanh(b) ** 2 - 1) * float(ellipk(k * k))
    return -(1 / math.tanh(b)) * (1 + 2 / math.pi * singular)


def onsager_magnetization(temperature: float) -> float:
    r"""Exact spontaneous magnetisation :math:`(1 - \sinh^{-4}(2/T))^{1/8}` below :math:`T_c`, 0 above."""
    if temperature >= ISING_CRITICAL_TEMPERATURE:
        return 0.0
    return (1 - math.sinh(2.0 / temperature) ** -4) ** 0.125
