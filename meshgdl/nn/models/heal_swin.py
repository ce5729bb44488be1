r"""HEAL-SWIN (Carlsson, Gerken et al., CVPR 2024): a SWIN transformer on the NESTED HEALPix
hierarchy, as a classifier (:class:`HealSwin`) and a U-Net for per-pixel prediction
(:class:`HealSwinUNet`)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..attention.heal_swin_block import HealSwinBlock
from ..attention.healpix_patch_embed import HealpixPatchEmbed
from ..attention.healpix_patch_expanding import HealpixPatchExpanding
from ..attention.healpix_patch_merging import HealpixPatchMerging
from ..attention.healpix_sky import HealpixSky


class HealSwinStage(nn.Module):
    r"""``depth`` :class:`~meshgdl.nn.attention.heal_swin_block.HealSwinBlock` s, every second one
    shifted. Windows shrink to the base pixel where the level is coarser than the window
    (:math:`w \le \log_2 n_{side}`), and a level with one token per base pixel is not shifted."""

    def __init__(self, channels: int, depth: int, heads: int, window_order: int, shift: str | None,
                 nside: int, cosine: bool, mlp_ratio: float, drop_path: list[float]):
        super().__init__()
        w = min(window_order, nside.bit_length() - 1)
        self.blocks = nn.ModuleList(
            HealSwinBlock(channels, heads, w, shift if (i % 2 and w > 0) else None, mlp_ratio=mlp_ratio,
                          cosine=cosine, drop_path=drop_path[i])
            for i in range(depth))

    def forward(self, x: Tensor, sky: HealpixSky) -> Tensor:
        for block in self.blocks:
            x = block(x, sky)
        return x


def _check_sizes(depths, heads, embed_dim):
    if len(depths) != len(heads) or not depths:
        raise ValueError(f"depths and heads need one entry per stage, got {depths} and {heads}")
    for i, h in enumerate(heads):
        if (embed_dim << i) % h:
            raise ValueError(f"stage {i} has width {embed_dim << i}, which {h} heads do not divide")


class _Backbone(nn.Module):
    def __init__(self, in_channels, nside, embed_dim, depths, heads, patch_order, window_order, shift,
                 cosine, mlp_ratio, drop_path):
        super().__init__()
        _check_sizes(depths, heads, embed_dim)
        self.nside, self.patch_order, self.levels = nside, patch_order, len(depths)
        coarsest = nside >> (patch_order + len(depths) - 1)
        if coarsest < 1:
            raise ValueError(f"nside {nside} is too small for a patch of 4^{patch_order} pixels and "
                             f"{len(depths) - 1} merges; use nside >= {1 << (patch_order + len(depths) - 1)}")
        rates = [drop_path * i / max(1, sum(depths) - 1) for i in range(sum(depths))]
        self.embed = HealpixPatchEmbed(in_channels, embed_dim, patch_order)
        self.stages, self.merges = nn.ModuleList(), nn.ModuleList()
        for i, (depth, h) in enumerate(zip(depths, heads)):
            rate, rates = rates[:depth], rates[depth:]
            self.stages.append(HealSwinStage(embed_dim << i, depth, h, window_order, shift,
                                             nside >> (patch_order + i), cosine, mlp_ratio, rate))
            if i + 1 < len(depths):
                self.merges.append(HealpixPatchMerging(embed_dim << i))

    def skies(self, graph) -> list[HealpixSky]:
        sky = HealpixSky.of(graph)
        if sky.nside != self.nside:
            raise ValueError(f"the model was built for nside {self.nside}, the graph has nside {sky.nside}")
        return [sky] + [sky.coarser(self.patch_order + i) for i in range(self.levels)]

    def encode(self, x: Tensor, skies) -> list[Tensor]:
        x = self.embed(x, skies[0])
        features = []
        for i, stage in enumerate(self.stages):
            x = stage(x, skies[i + 1])
            features.append(x)
            if i < len(self.merges):
                x = self.merges[i](x, skies[i + 1])
        return features


class HealSwin(nn.Module):
    r"""A HEAL-SWIN classifier: patch embedding, SWIN stages joined by patch merging, a LayerNorm,
    the mean over tokens, and a linear head. The defaults are the paper's layout (patches of 4
    pixels, windows of 64 tokens, widths doubling per stage, grid shift, cosine attention with
    post-normalisation) at a width that trains on a CPU.

    Args:
        in_channels (int): channels per pixel.
        num_classes (int): outputs.
        nside (int): resolution of the input maps.
        embed_dim (int): width of the first stage. (default: ``48``)
        depths, heads (tuple): blocks and heads per stage. (default: ``(2, 2, 2)``, ``(3, 6, 12)``)
        patch_order (int): patches of :math:`4^p` pixels. (default: ``1``)
        window_order (int): windows of :math:`4^w` tokens. (default: ``3``)
        shift (str): ``"grid"``, ``"ring"`` or ``None``. (default: ``"grid"``)
        cosine (bool): scaled cosine attention with post-norm. (default: ``True``)
        mlp_ratio (float), drop_path (float): MLP width and the largest stochastic-depth rate.

    Shapes:
        - input: :math:`[(B,) N, C_\text{in}]` on ``graph`` (NESTED, any mask); output:
          :math:`[(B,) \text{num\_classes}]`.
    """

    def __init__(self, in_channels: int, num_classes: int, nside: int, embed_dim: int = 48,
                 depths=(2, 2, 2), heads=(3, 6, 12), patch_order: int = 1, window_order: int = 3,
                 shift: str | None = "grid", cosine: bool = True, mlp_ratio: float = 4.0,
                 drop_path: float = 0.0):
        super().__init__()
        self.backbone = _Backbone(in_channels, nside, embed_dim, depths, heads, patch_order, window_order,
                                  shift, cosine, mlp_ratio, drop_path)
        width = embed_dim << (len(depths) - 1)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: Tensor, graph) -> Tensor:
        features = self.backbone.encode(x, self.backbone.skies(graph))
        return self.head(self.norm(features[-1]).mean(-2))


class HealSwinUNet(nn.Module):
    r"""A HEAL-SWIN U-Net for per-pixel prediction: the encoder of :class:`HealSwin`, a decoder of
    patch expanding and SWIN stages with skip connections (concatenated, then a linear map back to
    the stage width), and a final expansion from tokens to pixels with a linear head. Arguments as
    in :class:`HealSwin`, with ``out_channels`` outputs per pixel.

    Shapes:
        - input: :math:`[(B,) N, C_\text{in}]` on ``graph``; output: :math:`[(B,) N, C_\text{out}]`.
    """

    def __init__(self, in_channels: int, out_channels: int, nside: int, embed_dim: int = 48,
                 depths=(2, 2, 2), heads=(3, 6, 12), patch_order: int = 1, window_order: int = 3,
                 shift: str | None = "grid", cosine: bool = True, mlp_ratio: float = 4.0,
                 drop_path: float = 0.0):
        super().__init__()
        self.backbone = _Backbone(in_channels, nside, embed_dim, depths, heads, patch_order, window_order,
                                  shift, cosine, mlp_ratio, drop_path)
        self.expands, self.skips, self.stages = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(len(depths) - 1)):
            width = embed_dim << i
            self.expands.append(HealpixPatchExpanding(2 * width, width))
            self.skips.append(nn.Linear(2 * width, width))
            self.stages.append(HealSwinStage(width, depths[i], heads[i], window_order, shift,
                                             nside >> (patch_order + i), cosine, mlp_ratio, [0.0] * depths[i]))
        self.norm = nn.LayerNorm(embed_dim)
        self.to_pixels = HealpixPatchExpanding(embed_dim, embed_dim, order=patch_order)
        self.head = nn.Linear(embed_dim, out_channels)

    def forward(self, x: Tensor, graph) -> Tensor:
        skies = self.backbone.skies(graph)
        features = self.backbone.encode(x, skies)
        x = features[-1]
        for j, (expand, skip, stage) in enumerate(zip(self.expands, self.skips, self.stages)):
            i = len(features) - 2 - j
            x = expand(x, skies[i + 1])
            x = stage(skip(torch.cat([x, features[i]], dim=-1)), skies[i + 1])
        return self.head(self.to_pixels(self.norm(x), skies[0]))

