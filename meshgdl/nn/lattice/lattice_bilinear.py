r"""Gauge-equivariant bilinear layer for matrix features (L-Bilin of the L-CNN)."""
from __future__ import annotations

import torch
from torch import Tensor

from ._lattice import as_complex, check_features, complex_parameter, dagger, identity_like


class LatticeBilinear(torch.nn.Module):
    r"""Products of matrix features at the same site with learned mixing, from
    `Favoni et al. (PRL 128, 032003, 2022) <https://arxiv.org/abs/2012.12901>`_.

    .. math::
        F''_{x,c} = \sum_{a,b} \omega_{cab}\, \tilde F_{x,a} \tilde G_{x,b},

    where :math:`\tilde F` are the channels of :math:`F` augmented (``augment=True``) by their
    Hermitian conjugates and the unit matrix, and likewise :math:`\tilde G`; the unit matrix makes
    the linear terms and a constant part of the same sum. Products of features that transform as
    :math:`\Omega_x F \Omega_x^\dagger` transform the same way, so the layer is gauge equivariant.

    Args:
        in_channels1 (int): channels of :math:`F`.
        in_channels2 (int): channels of :math:`G`.
        out_channels (int): output channels.
        augment (bool): add :math:`F^\dagger` and :math:`\mathbb 1` to both inputs.
            (default: ``True``)

    Shapes:
        - input: :math:`F` :math:`[N, C_1, n, n]`, :math:`G` :math:`[N, C_2, n, n]` complex
          (``G`` defaults to ``F``)
        - output: :math:`[N, C_{out}, n, n]`
    """

    def __init__(self, in_channels1: int, in_channels2: int, out_channels: int, augment: bool = True):
        super().__init__()
        if min(in_channels1, in_channels2, out_channels) < 1:
            raise ValueError("in_channels1, in_channels2 and out_channels must be >= 1")
        self.in_channels1, self.in_channels2, self.out_channels = in_channels1, in_channels2, out_channels
        self.augment = augment
        a, b = (2 * in_channels1 + 1, 2 * in_channels2 + 1) if augment else (in_channels1, in_channels2)
        self.weight = complex_parameter(out_channels, a, b, fan_in=a * b)

    def _augmented(self, x: Tensor) -> Tensor:
        return torch.cat([x, dagger(x), identity_like(x)], dim=1) if self.augment else x

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        y = x if y is None else y
        check_features(x, self.in_channels1, type(self).__name__)
        check_features(y, self.in_channels2, type(self).__name__)
        x, y = self._augmented(x), self._augmented(y)
        # mix the right factor first: sum_a F_a (sum_b w_cab G_b), no [N, A, B, n, n] products
        mixed = torch.einsum("cab,nbij->ncaij", as_complex(self.weight, x), y)
        return (x[:, None] @ mixed).sum(2)

    def extra_repr(self) -> str:
        return f"{self.in_channels1}, {self.in_channels2}, {self.out_channels}, augment={self.augment}"
