"""The built-in models of ``meshgdl train``, each wrapped so that ``forward(batch)`` gives the prediction."""
from __future__ import annotations

import torch
from torch import Tensor

from .registry import register_model


class NodeFeatureModel(torch.nn.Module):
    """``net(batch.x, batch)``: the call of the models that read node features on a framed graph."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, batch) -> Tensor:
        return self.net(batch.x, batch)


class GraphModel(torch.nn.Module):
    """``net(batch)``: models whose input is the graph itself (the L-CNN reads the links)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, batch) -> Tensor:
        return self.net(batch)


class SkyModel(torch.nn.Module):
    """HEAL-SWIN on a batch of maps of one sky: ``x`` :math:`[BN, C]` becomes :math:`[B, N, C]` on
    the first graph's pixels (every map of a data set covers the same pixels); a per-pixel output
    is flattened back to :math:`[BN, C]`."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, batch) -> Tensor:
        b = int(getattr(batch, "num_graphs", 1))
        sky = batch.get_example(0) if b > 1 else batch
        out = self.net(batch.x.view(b, -1, batch.x.shape[-1]), sky)
        return out.reshape(-1, out.shape[-1]) if out.dim() == 3 else out


_GEM = {"hidden_copies": 8, "max_frequency": 2, "num_blocks": 2, "nonlinearity": "gated", "norm": "batch",
        "num_radial": 0}
_GEM_HELP = {"hidden_copies": "copies of each frequency between blocks",
             "max_frequency": "highest SO(2) frequency of the hidden features",
             "num_blocks": "residual blocks", "nonlinearity": "gated, norm or regular",
             "norm": "batch, layer or none", "num_radial": "radial profile functions (0: none)"}


@register_model("GemResNet", defaults=_GEM, help=_GEM_HELP, data="mesh_folder",
                summary="gauge-equivariant GEM ResNet (meshgdl.nn.models.GemResNet), node or graph task")
def gem_resnet(info, hidden_copies, max_frequency, num_blocks, nonlinearity, norm, num_radial):
    from ..field_type import FieldType
    from ..nn.models import GemResNet

    if info.in_channels < 1:
        raise ValueError("GemResNet needs node features x; this data set has none (use LCNN for lattices)")
    kwargs = {"num_radial": num_radial} if num_radial else {}
    net = GemResNet(info.in_channels, info.out_channels, FieldType.uniform(hidden_copies, max_frequency),
                    num_blocks=num_blocks, task=info.task, nonlinearity=nonlinearity,
                    norm=None if norm == "none" else norm, **kwargs)
    return NodeFeatureModel(net)


_SWIN = {"embed_dim": 12, "depths": [2, 2], "heads": [2, 4], "patch_order": 1, "window_order": 1,
         "shift": "grid", "cosine": True, "mlp_ratio": 2.0, "drop_path": 0.0}
_SWIN_HELP = {"embed_dim": "width of the first stage (doubles per stage)", "depths": "SWIN blocks per stage",
              "heads": "attention heads per stage", "patch_order": "patches of 4^p pixels",
              "window_order": "windows of 4^w tokens", "shift": "grid, ring or none",
              "cosine": "scaled cosine attention with post-norm", "mlp_ratio": "MLP width / embedding width",
              "drop_path": "largest stochastic-depth rate"}


def _swin_kwargs(info, options: dict) -> dict:
    if info.domain != "healpix":
        raise ValueError(f"HEAL-SWIN models need a HEALPix data set, got a {info.domain} one")
    options = dict(options, depths=tuple(options["depths"]), heads=tuple(options["heads"]))
    options["shift"] = None if options["shift"] == "none" else options["shift"]
    return dict(in_channels=info.in_channels, nside=info.nside, **options)


@register_model("HealSwinUNet", defaults=_SWIN, help=_SWIN_HELP, data="healpix",
                summary="HEAL-SWIN U-Net for per-pixel prediction (meshgdl.nn.models.HealSwinUNet)")
def heal_swin_unet(info, **options):
    from ..nn.models import HealSwinUNet

    return SkyModel(HealSwinUNet(out_channels=info.out_channels, **_swin_kwargs(info, options)))


@register_model("HealSwin", defaults=_SWIN, help=_SWIN_HELP, data="healpix",
                summary="HEAL-SWIN classifier of whole maps (meshgdl.nn.models.HealSwin); needs a graph task")
def heal_swin(info, **options):
    from ..nn.models import HealSwin

    if info.task != "graph":
        raise ValueError("HealSwin predicts one output per map; for per-pixel targets use HealSwinUNet")
    return SkyModel(HealSwin(num_classes=info.out_channels, **_swin_kwargs(info, options)))


@register_model("LCNN", data="lattice_gauge",
                defaults={"channels": [4, 4], "kernel_size": 1, "loop_sizes": [[1, 1]], "activation": True},
                help={"channels": "matrix channels after each block", "kernel_size": "longest transport path",
                      "loop_sizes": "Wilson loops fed as inputs", "activation": "trace-gated activation after each block"},
                summary="lattice gauge equivariant CNN (meshgdl.nn.models.LCNN)")
def lcnn(info, channels, kernel_size, loop_sizes, activation):
    from ..nn.models import LCNN

    if info.domain != "lattice":
        raise ValueError(f"LCNN needs a lattice gauge data set, got a {info.domain} one")
    return GraphModel(LCNN(tuple(channels), info.out_channels, kernel_size,
                           loop_sizes=tuple(tuple(s) for s in loop_sizes), activation=activation,
                           pool=info.task == "graph"))
