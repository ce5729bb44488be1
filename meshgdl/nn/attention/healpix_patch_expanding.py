r"""Patch expanding on HEALPix: each token becomes its :math:`4^k` NESTED children (a U-Net's
upsampling, the inverse layout of :class:`HealpixPatchMerging`)."""
from __future__ import annotations

from torch import Tensor, nn

from ...field_type import FieldType
from .._input import check_features
from .healpix_sky import HealpixSky


class HealpixPatchExpanding(nn.Module):
    r"""Expand every token of ``coarse`` into its :math:`4^k` NESTED children (Swin-Unet):

    .. math::
        [y_{4^k P}, \dots, y_{4^k P + 4^k - 1}] = W x_P, \qquad y_c \leftarrow \mathrm{LayerNorm}(y_c),

    then keep the children that the fine sky holds.

    Args:
        channels (int): input width :math:`C`.
        out_channels (int, optional): width of each child (default: ``channels // 2``, as in
            Swin-Unet, for ``order=1``).
        order (int): :math:`k`. (default: ``1``)

    Shapes:
        - input: :math:`[(B,) M, C]` on ``fine``'s ``coarser(k)``; output:
          :math:`[(B,) N, C_\text{out}]` on ``fine``.
    """

    def __init__(self, channels: int, out_channels: int | None = None, order: int = 1):
        super().__init__()
        self.channels, self.order = channels, order
        self.out_channels = out_channels or max(1, channels // 2)
        self.expand = nn.Linear(channels, 4 ** order * self.out_channels, bias=False)
        self.norm = nn.LayerNorm(self.out_channels)

    def forward(self, x: Tensor, fine) -> Tensor:
        """``x`` on the coarse tokens, ``fine`` the sky (or HEALPix graph) to expand onto."""
        sky = HealpixSky.of(fine)
        coarse = sky.coarser(self.order)
        check_features(self, x, FieldType.scalars(self.channels), coarse.num_nodes, batched=True)
        y = self.norm(self.expand(x).unflatten(-1, (4 ** self.order, self.out_channels))).flatten(-3, -2)
        if sky.full:
            return y
        return y[..., sky.child_positions(self.order).to(y.device), :]

    def extra_repr(self) -> str:
        return f"{self.channels}, {self.out_channels}, order={self.order}"
