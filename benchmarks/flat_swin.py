"""A flat SWIN v1 block on an H x W image of tokens, the baseline of ``bench_heal_swin.py``.

``flat_swin_block`` returns torchvision's ``SwinTransformerBlock`` when torchvision imports, else
:class:`FlatSwinBlock`, a copy of Microsoft's reference design (Liu et al. 2021,
github.com/microsoft/Swin-Transformer, ``models/swin_transformer.py``): ``torch.roll`` for the cyclic
shift, window partition and reverse by reshapes, a relative position bias table, explicit
``q @ k^T`` and softmax, and the SW-MSA mask (-100 between regions) built once for the resolution.
Both take and return ``[B, H, W, C]``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def flat_swin_block(channels: int, heads: int, resolution: tuple[int, int], window: int, shift: int,
                    mlp_ratio: float = 4.0) -> tuple[nn.Module, str]:
    """The block and the name of the implementation that built it."""
    try:
        from torchvision.models.swin_transformer import SwinTransformerBlock
    except Exception:  # torchvision missing, or its C ops built for another torch
        return FlatSwinBlock(channels, heads, resolution, window, shift, mlp_ratio), "reference (Microsoft design)"
    block = SwinTransformerBlock(channels, heads, [window, window], [shift, shift], mlp_ratio=mlp_ratio,
                                 stochastic_depth_prob=0.0)
    return block, "torchvision SwinTransformerBlock"


def window_partition(x: Tensor, ws: int) -> Tensor:
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)


def window_reverse(windows: Tensor, ws: int, h: int, w: int) -> Tensor:
    b = windows.shape[0] // (h * w // ws // ws)
    x = windows.view(b, h // ws, w // ws, ws, ws, -1)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, -1)


class WindowAttention(nn.Module):
    def __init__(self, channels: int, heads: int, ws: int):
        super().__init__()
        self.heads, self.ws = heads, ws
        self.scale = (channels // heads) ** -0.5
        self.bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + ws - 1
        self.register_buffer("bias_index", rel[..., 0] * (2 * ws - 1) + rel[..., 1], persistent=False)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        bw, n, c = x.shape
        q, k, v = self.qkv(x).reshape(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn + self.bias_table[self.bias_index.view(-1)].view(n, n, -1).permute(2, 0, 1)[None]
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(bw // nw, nw, self.heads, n, n) + mask[None, :, None]
            attn = attn.view(-1, self.heads, n, n)
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(bw, n, c))


class FlatSwinBlock(nn.Module):
    """Pre-norm SWIN v1 block: ``x + W-MSA(LN(x))`` (shifted when ``shift > 0``), then ``x + MLP(LN(x))``.

    Shapes: input and output ``[B, H, W, C]`` with ``(H, W) = resolution``.
    """

    def __init__(self, channels: int, heads: int, resolution: tuple[int, int], window: int, shift: int,
                 mlp_ratio: float = 4.0):
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = nn.LayerNorm(channels)
        self.attn = WindowAttention(channels, heads, window)
        self.norm2 = nn.LayerNorm(channels)
        hidden = int(channels * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, channels))
        mask = None
        if shift:
            h, w = resolution
            img = torch.zeros(1, h, w, 1)
            cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
            for region, (hs, ws) in enumerate((a, b) for a in cuts for b in cuts):
                img[:, hs, ws, :] = region
            label = window_partition(img, window).squeeze(-1)
            mask = (label[:, None, :] - label[:, :, None]).ne(0).float() * -100.0
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        y = self.norm1(x)
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), dims=(1, 2))
        y = window_reverse(self.attn(window_partition(y, self.window), self.attn_mask), self.window, h, w)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), dims=(1, 2))
        x = x + y
        return x + self.mlp(self.norm2(x))
