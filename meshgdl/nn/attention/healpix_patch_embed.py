r"""Patch embedding on HEALPix: :math:`4^p` consecutive NESTED pixels become one token."""
from __future__ import annotations

from torch import Tensor, nn

from ...field_type import FieldType
from .._input import check_features
from .healpix_sky import HealpixSky, gather_groups


class HealpixPatchEmbed(nn.Module):
    r"""Embed each patch of :math:`4^p` consecutive NESTED pixels (a :math:`2^p \times 2^p` square,
    the parent at ``nside / 2^p``) as one token:

    .. math::
        t_P = \mathrm{LayerNorm}\big(W\, [x_{4^p P}, \dots, x_{4^p P + 4^p - 1}] + b\big),

    a strided convolution in the NESTED ordering. On a partial sky a patch is kept if any of its
    pixels is, and missing pixels read as zeros.

    Args:
        in_channels (int): channels per pixel.
        embed_dim (int): token width.
        patch_order (int): :math:`p`. (default: ``1``)
        norm (bool): a LayerNorm after the projection. (default: ``True``)

    Shapes:
        - input: :math:`[(B,) N, C_\text{in}]` on ``graph``; output: :math:`[(B,) M, D]` on
          ``HealpixSky.of(graph).coarser(p)``.
    """

    def __init__(self, in_channels: int, embed_dim: int, patch_order: int = 1, norm: bool = True):
        super().__init__()
        self.in_channels, self.embed_dim, self.patch_order = in_channels, embed_dim, patch_order
        self.proj = nn.Linear(4 ** patch_order * in_channels, embed_dim)
        self.norm = nn.LayerNorm(embed_dim) if norm else nn.Identity()

    def forward(self, x: Tensor, graph) -> Tensor:
        sky = HealpixSky.of(graph)
        check_features(self, x, FieldType.scalars(self.in_channels), sky.num_nodes, batched=True)
        sky.coarser(self.patch_order)  # a clear error when nside is too small for the patch
        patches = gather_groups(x, sky.children(self.patch_order), 4 ** self.patch_order)
        return self.norm(self.proj(patches.flatten(-2)))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.embed_dim}, patch_order={self.patch_order}"
