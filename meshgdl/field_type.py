"""Field types: how a plain ``[N, C]`` feature tensor transforms under a change of gauge."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


class FieldType:
    r"""Copies of each SO(2) frequency ``k = 0..K`` laid out in one ``[N, C]`` tensor.

    The channels hold, in ascending frequency, ``multiplicities[0]`` scalars, then for each
    ``k >= 1`` ``multiplicities[k]`` pairs ``(cos, sin)``, so that
    :math:`C = m_0 + 2 \sum_{k \ge 1} m_k`. Under a gauge transformation that turns the frame at
    node i by :math:`p_i`, a frequency-k pair changes as :math:`f' = R(-k p_i) f`.

    Args:
        multiplicities (sequence of int): copies of each frequency, starting at ``k = 0``.

    Example:
        >>> FieldType([4, 2]).dim     # four scalars and two vectors
        8
    """

    def __init__(self, multiplicities: Sequence[int]):
        mult = tuple(int(m) for m in multiplicities)
        if not mult or any(m < 0 for m in mult) or sum(mult) == 0:
            raise ValueError(f"multiplicities must be non-negative with at least one copy, got {list(multiplicities)}")
        while len(mult) > 1 and mult[-1] == 0:
            mult = mult[:-1]
        self.multiplicities = mult

    @classmethod
    def scalars(cls, n: int) -> "FieldType":
        """``n`` gauge-invariant channels."""
        return cls([n])

    @classmethod
    def vectors(cls, n: int) -> "FieldType":
        """``n`` tangent vectors (frequency 1), each as its coordinates ``(v_1, v_2)``."""
        return cls([0, n])

    @classmethod
    def uniform(cls, copies: int, max_frequency: int) -> "FieldType":
        """``copies`` of every frequency ``0..max_frequency``."""
        return cls([copies] * (max_frequency + 1))

    @property
    def max_frequency(self) -> int:
        return len(self.multiplicities) - 1

    @property
    def dim(self) -> int:
        return self.multiplicities[0] + 2 * sum(self.multiplicities[1:])

    def slices(self):
        """``(k, slice)`` for each frequency present, in the layout order."""
        start = 0
        for k, m in enumerate(self.multiplicities):
            width = m if k == 0 else 2 * m
            if m:
                yield k, slice(start, start + width)
            start += width

    def frequencies(self) -> Tensor:
        """The frequency of every channel: ``[C]`` long."""
        out = []
        for k, m in enumerate(self.multiplicities):
            out += [k] * (m if k == 0 else 2 * m)
        return torch.tensor(out, dtype=torch.long)

    def scalar_mask(self) -> Tensor:
        """``[C]`` bool: which channels are gauge invariant."""
        return self.frequencies() == 0

    def transform(self, x: Tensor, angles: Tensor) -> Tensor:
        r"""Features seen in frames turned by ``angles``: ``[N, C]``, ``[N]`` -> ``[N, C]``.

        Leading batch dimensions are allowed: ``x`` of shape ``[..., N, C]``.
        """
        if x.shape[-1] != self.dim:
            raise ValueError(f"features have {x.shape[-1]} channels but {self} has {self.dim}")
        out = x.clone()
        for k, sl in self.slices():
            if k == 0:
                continue
            pairs = x[..., sl].unflatten(-1, (-1, 2))
            c = torch.cos(k * angles).to(x.dtype)[:, None]
            s = torch.sin(k * angles).to(x.dtype)[:, None]
            # R(-k p) (u, v) = (c u + s v, -s u + c v)
            u, v = pairs[..., 0], pairs[..., 1]
            out[..., sl] = torch.stack([c * u + s * v, -s * u + c * v], -1).flatten(-2)
        return out

    def __eq__(self, other) -> bool:
        return isinstance(other, FieldType) and other.multiplicities == self.multiplicities

    def __hash__(self) -> int:
        return hash(self.multiplicities)

    def __repr__(self) -> str:
        return f"FieldType({list(self.multiplicities)})"
