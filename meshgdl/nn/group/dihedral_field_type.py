r"""Regular fields of the dihedral group :math:`D_N`: one value per rotation and reflection."""
from __future__ import annotations

import torch
from torch import Tensor

from ..functional.angular import reflected_angular_basis
from .cyclic_field_type import CyclicFieldType


class DihedralFieldType(CyclicFieldType):
    r"""``channels`` copies of the regular representation of :math:`D_N` (``2 N`` orientations),
    laid out channel-major: column ``c * 2N + s * N + r`` holds channel ``c`` at the element
    :math:`h = \rho^r \mu^s`, :math:`\rho` the turn by :math:`2\pi / N` and :math:`\mu` the
    reflection across e1 (:math:`\mu\theta = -\theta`), multiplied as
    :math:`\rho^{r_1}\mu^{s_1}\,\rho^{r_2}\mu^{s_2} = \rho^{r_1 + (-1)^{s_1} r_2}\mu^{s_1 + s_2}`.

    Frames seen through a group element :math:`g` relabel the orientations as
    :math:`x'_{c, h} = x_{c, g h}` (:meth:`act`); for a frame turned by :math:`p = 2\pi q / N`
    (:meth:`transform`, the gauge transformations and transports of a framed graph)
    :math:`g = \rho^q` moves ``r`` by ``q`` in both halves, as :class:`CyclicFieldType` does. Pool
    the orientations with :class:`~meshgdl.nn.CNOrientationPool` of order ``2 N``.

    Args:
        channels (int): copies of the regular representation.
        order (int): :math:`N`.
    """

    @property
    def group_size(self) -> int:
        """Orientations per channel, :math:`|D_N| = 2N`."""
        return 2 * self.order

    def product_table(self) -> Tensor:
        """``[2N, 2N]``: entry ``[h, g]`` is the index ``s N + r`` of the product ``h g``."""
        n = self.order
        r, s = torch.arange(2 * n) % n, torch.arange(2 * n) // n
        rot = (r[:, None] + (1 - 2 * s[:, None]) * r[None, :]) % n
        return ((s[:, None] + s[None, :]) % 2) * n + rot

    def angular_basis(self, theta: Tensor, bandwidth: int) -> Tensor:
        """``[E]`` -> ``[E, 2 L + 1, 2 N]``: a kernel's Fourier basis at :math:`h^{-1}\\theta`."""
        return reflected_angular_basis(theta, bandwidth, self.order)

    def act(self, x: Tensor, rotation: int, reflection: bool) -> Tensor:
        r"""``x'[..., c, h] = x[..., c, g h]`` for :math:`g = \rho^\text{rotation}
        \mu^\text{reflection}`: ``[..., C 2N]`` -> ``[..., C 2N]``. A reflection of the domain that
        maps frame axes onto frame axes acts on fields this way (with the node permutation)."""
        if x.shape[-1] != self.dim:
            raise ValueError(f"features have {x.shape[-1]} channels but {self} has {self.dim}")
        g = int(reflection) * self.order + rotation % self.order
        return x.unflatten(-1, (self.channels, self.group_size))[..., self.product_table()[g]].flatten(-2)

    def __repr__(self) -> str:
        return f"DihedralFieldType({self.channels}, order={self.order})"
