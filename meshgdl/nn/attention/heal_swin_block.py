r"""A HEAL-SWIN transformer block: window attention and an MLP, each with a residual connection."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .healpix_window_attention import HealpixWindowAttention


class HealSwinBlock(nn.Module):
    r"""One SWIN block on HEALPix tokens, pre-norm (SWIN v1)

    .. math::
        x \leftarrow x + \mathrm{Attn}(\mathrm{LN}(x)), \qquad x \leftarrow x + \mathrm{MLP}(\mathrm{LN}(x)),

    or, with ``post_norm=True`` (SWIN v2, used with cosine attention),
    :math:`x \leftarrow x + \mathrm{LN}(\mathrm{Attn}(x))`, :math:`x \leftarrow x + \mathrm{LN}(\mathrm{MLP}(x))`.
    Stochastic depth drops a residual branch per sample with probability ``drop_path``.

    Args:
        channels (int): token width.
        heads (int): attention heads.
        window_order (int): windows of :math:`4^w` tokens.
        shift (str, optional): ``None``, ``"grid"`` or ``"ring"``. (default: ``None``)
        mlp_ratio (float): hidden width of the MLP over ``channels``. (default: ``4.0``)
        cosine (bool): scaled cosine attention. (default: ``False``)
        post_norm (bool, optional): normalise after each branch (default: ``cosine``).
        dropout, drop_path (float): dropout in the MLP and on the attention weights, and stochastic
            depth. (default: ``0.0``)

    Shapes:
        - input and output: :math:`[(B,) N, C]` on the tokens of ``graph``.
    """

    def __init__(self, channels: int, heads: int, window_order: int, shift: str | None = None,
                 mlp_ratio: float = 4.0, cosine: bool = False, post_norm: bool | None = None,
                 dropout: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        self.post_norm = cosine if post_norm is None else post_norm
        self.drop_path = drop_path
        self.norm1 = nn.LayerNorm(channels)
        self.attn = HealpixWindowAttention(channels, heads, window_order, shift, cosine=cosine, dropout=dropout)
        self.norm2 = nn.LayerNorm(channels)
        hidden = int(channels * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, channels), nn.Dropout(dropout))

    def _drop(self, y: Tensor) -> Tensor:
        if not self.training or self.drop_path == 0.0:
            return y
        keep = 1.0 - self.drop_path
        shape = (y.shape[0],) + (1,) * (y.dim() - 1) if y.dim() == 3 else (1, 1)
        return y * torch.empty(shape, dtype=y.dtype, device=y.device).bernoulli_(keep) / keep

    def forward(self, x: Tensor, graph) -> Tensor:
        if self.post_norm:
            x = x + self._drop(self.norm1(self.attn(x, graph)))
            return x + self._drop(self.norm2(self.mlp(x)))
        x = x + self._drop(self.attn(self.norm1(x), graph))
        return x + self._drop(self.mlp(self.norm2(x)))
