r"""Patch merging on HEALPix: the four children of a pixel become one token (SWIN's downsampling)."""
from __future__ import annotations

from torch import Tensor, nn

from ...field_type import FieldType
from .._input import check_features
from .healpix_sky import HealpixSky, gather_groups


class HealpixPatchMerging(nn.Module):
    r"""Merge the four NESTED children of each parent pixel, as in SWIN:

    .. math::
        y_P = W\, \mathrm{LayerNorm}([x_{4P}, x_{4P+1}, x_{4P+2}, x_{4P+3}]),

    from :math:`C` to ``out_channels`` (default :math:`2C`) channels and from ``nside`` to
    ``nside / 2``. The grouping is healpy's ``ud_grade``: a pixel's parent is ``pixel // 4``.

    Args:
        channels (int): :math:`C`.
        out_channels (int, optional): output width (default: ``2 * channels``).

    Shapes:
        - input: :math:`[(B,) N, C]` on ``graph``; output: :math:`[(B,) M, C_\text{out}]` on
          ``HealpixSky.of(graph).coarser(1)``.
    """

    def __init__(self, channels: int, out_channels: int | None = None):
        super().__init__()
        self.channels, self.out_channels = channels, out_channels or 2 * channels
        self.norm = nn.LayerNorm(4 * channels)
        self.reduction = nn.Linear(4 * channels, self.out_channels, bias=False)

    def forward(self, x: Tensor, graph) -> Tensor:
        sky = HealpixSky.of(graph)
        check_features(self, x, FieldType.scalars(self.channels), sky.num_nodes, batched=True)
        sky.coarser(1)
        return self.reduction(self.norm(gather_groups(x, sky.children(1), 4).flatten(-2)))

    def extra_repr(self) -> str:
        return f"{self.channels}, {self.out_channels}"
