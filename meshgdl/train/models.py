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


class HierarchyModel(torch.nn.Module):
    """``net(x, hierarchy)`` for each graph of the batch: the models that pool along a coarsening
    hierarchy. The hierarchy of each geometry is built once and kept, keyed by a hash of its
    positions and edges (every map of one sky, or every sample of one mesh, shares one)."""

    def __init__(self, net: torch.nn.Module, sizes):
        super().__init__()
        self.net, self.sizes = net, tuple(int(s) for s in sizes)
        self._hierarchies: dict = {}

    def hierarchy(self, graph):
        from ..cache import content_hash
        from ..nn.models import CoarseningHierarchy

        key = (content_hash(graph.pos, graph.edge_index), graph.pos.dtype, str(graph.pos.device))
        if key not in self._hierarchies:
            hierarchy = CoarseningHierarchy.build(graph, self.sizes)
            # every level in use on every graph: DDP needs every parameter to get a gradient
            if len(hierarchy.levels) < self.net.depth:
                raise ValueError(f"a graph of {graph.num_nodes} nodes has {len(hierarchy.levels)} coarsening levels "
                                 f"below it in sizes = {list(self.sizes)}, but depth = {self.net.depth}; lower "
                                 "depth or give sizes below the smallest graph's node count")
            self._hierarchies[key] = hierarchy
        return self._hierarchies[key]

    def forward(self, batch) -> Tensor:
        b = int(getattr(batch, "num_graphs", 1))
        if b == 1 and getattr(batch, "ptr", None) is None:
            return self.net(batch.x, self.hierarchy(batch))
        outs = []
        for k in range(b):
            x = batch.x[batch.ptr[k]:batch.ptr[k + 1]]  # the batch's x: training noise included
            outs.append(self.net(x, self.hierarchy(batch.get_example(k))))
        return torch.cat(outs)


@register_model("GemUNet", data="mesh_folder",
                defaults={"width": 4, "depth": 3, "max_frequency": 2, "sizes": [512, 128, 32]},
                help={"width": "copies of each frequency 0..max_frequency", "depth": "pooling levels used",
                      "max_frequency": "highest SO(2) frequency of the hidden features",
                      "sizes": "nodes of each coarsening level (sizes not below the graph's are skipped)"},
                summary="GemConv U-Net on a coarsening hierarchy (meshgdl.nn.models.GemUNet), node or graph task")
def gem_unet(info, width, depth, max_frequency, sizes):
    from ..nn.models import GemUNet

    if info.in_channels < 1:
        raise ValueError("GemUNet needs node features x; this data set has none (use LCNN for lattices)")
    return HierarchyModel(GemUNet(info.in_channels, width, info.out_channels, depth=depth,
                                  max_frequency=max_frequency, task=info.task), sizes)


@register_model("CNGroupCNN", data="ising",
                defaults={"order": 4, "channels": [8, 8], "bandwidth": 4, "reduce": "max"},
                help={"order": "N of the rotation group C_N (4 or 8 on a grid, 4 on HEALPix)",
                      "channels": "channels of the lifting layer and of each group convolution",
                      "bandwidth": "highest angular frequency of the filters",
                      "reduce": "pooling over the orientations: max or mean"},
                summary="C_N group CNN on grids and HEALPix (meshgdl.nn.models.CNGroupCNN), node or graph task")
def cn_group_cnn(info, order, channels, bandwidth, reduce):
    from ..nn.models import CNGroupCNN

    if info.domain not in ("grid", "healpix"):
        raise ValueError(f"CNGroupCNN needs a grid or HEALPix data set, whose frames its rotations turn by "
                         f"multiples of 2 pi / N; got a {info.domain} one (use GemResNet or GemUNet)")
    return NodeFeatureModel(CNGroupCNN(info.in_channels, info.out_channels, order=order, channels=channels,
                                       bandwidth=bandwidth, task=info.task, reduce=reduce))
