r"""Regular fields of the cyclic group :math:`C_N`: one value per orientation ``2 pi r / N``."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..functional.angular import rotated_angular_basis


class CyclicFieldType:
    r"""``channels`` copies of the regular representation of :math:`C_N`, laid out channel-major:
    column ``c * N + r`` holds channel ``c`` at orientation :math:`2\pi r / N`.

    A frame turned by :math:`p = 2\pi q / N` sees the orientations relabelled,
    :math:`x'_{c, r} = x_{c, (r + q) \bmod N}` (:meth:`transform`); transport by
    :math:`a = 2\pi q / N` is the inverse shift. Only multiples of :math:`2\pi / N` act: these
    fields live on domains whose transports are such multiples (grids, where they vanish).

    Args:
        channels (int): copies of the regular representation.
        order (int): :math:`N`.
    """

    def __init__(self, channels: int, order: int):
        if channels < 1 or order < 1:
            raise ValueError(f"channels and order must be positive, got {channels}, {order}")
        self.channels, self.order = int(channels), int(order)

    @property
    def group_size(self) -> int:
        """Orientations per channel, :math:`|C_N| = N`."""
        return self.order

    @property
    def dim(self) -> int:
        return self.channels * self.group_size

    def product_table(self) -> Tensor:
        """``[N, N]``: entry ``[h, g]`` is the index of the product ``h g``, ``(h + g) mod N``."""
        r = torch.arange(self.order)
        return (r[:, None] + r[None, :]) % self.order

    def angular_basis(self, theta: Tensor, bandwidth: int) -> Tensor:
        """``[E]`` -> ``[E, 2 L + 1, N]``: a kernel's Fourier basis at :math:`h^{-1}\theta` for each
        orientation ``h``."""
        return rotated_angular_basis(theta, bandwidth, self.order)

    def steps(self, angles: Tensor, atol: float = 1e-9) -> Tensor:
        """The number ``q`` of orientation steps in each angle; raises if one is not a multiple."""
        q = angles * (self.order / (2 * math.pi))
        steps = torch.round(q)
        if bool(((q - steps).abs() > atol).any()):
            raise ValueError(f"C_{self.order} fields only turn by multiples of 2 pi / {self.order}; got an angle "
                             f"{float(angles[(q - steps).abs().argmax()]):.6g}")
        return steps.long()

    def shift(self, x: Tensor, steps: Tensor) -> Tensor:
        """``x'[k, c, r] = x[k, c, (r + steps[k]) mod N]``: ``[K, C N]``, ``[K]`` -> ``[K, C N]``."""
        r = torch.arange(self.order, device=x.device)
        index = (r[None, :] + steps[:, None]) % self.order                     # [K, N]
        grid = x.unflatten(-1, (-1, self.order))  # rotations move r within every block of N
        return torch.gather(grid, 2, index[:, None, :].expand_as(grid)).flatten(1)

    def transform(self, x: Tensor, angles: Tensor) -> Tensor:
        """Features seen in frames turned by ``angles`` (multiples of ``2 pi / N``)."""
        if x.shape[-1] != self.dim:
            raise ValueError(f"features have {x.shape[-1]} channels but {self} has {self.dim}")
        return self.shift(x, self.steps(angles))

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and (other.channels, other.order) == (self.channels, self.order)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.channels, self.order))

    def __repr__(self) -> str:
        return f"CyclicFieldType({self.channels}, order={self.order})"
