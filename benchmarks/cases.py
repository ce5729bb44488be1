"""Graphs and layers of the benchmark suite, at matched channel counts (64 in, 64 out)."""
from __future__ import annotations

import numpy as np
import torch

CHANNELS = 64
GRAPHS = {
    "bunny": {"large": False},       # pymeshlab's Stanford bunny, 28k vertices
    "bunny_1m": {"large": True},     # the same mesh, midpoint-subdivided (1.78M vertices)
    "healpix64": {"large": False},   # 49k pixels
    "healpix256": {"large": True},   # 786k pixels
}


def build_graph(name: str):
    from meshgdl.datasets import data_path
    from meshgdl.geometry import mesh_graph, read_mesh

    if name.startswith("bunny"):
        v, f = read_mesh(data_path("pymeshlab", "bunny.obj"))
        if name == "bunny_1m":
            import trimesh

            mesh = trimesh.Trimesh(v, f, process=False)
            edge = mesh.edges_unique_length.mean()
            v, f = trimesh.remesh.subdivide_to_size(mesh.vertices, mesh.faces, max_edge=edge / 5.5, max_iter=4)
        return mesh_graph(np.asarray(v), np.asarray(f), dtype=torch.float32)
    if name.startswith("healpix"):
        from meshgdl.geometry import healpix_graph

        return healpix_graph(int(name[len("healpix"):]), nest=True)
    raise KeyError(name)


def _gem(k: int, fused: bool):
    def make(graph):
        from meshgdl.nn import FieldType, GemConv

        ft = FieldType([32, 16]) if k == 1 else FieldType([16, 12, 12])
        assert ft.dim == CHANNELS
        layer = GemConv(ft, ft)
        if hasattr(layer, "fused"):
            layer.fused = fused
        return layer
    return make


def _pyg(name: str):
    def make(graph):
        import torch_geometric.nn as pyg

        if name == "GCNConv":
            return _XOnly(pyg.GCNConv(CHANNELS, CHANNELS, cached=True))
        if name == "FeaStConv":
            return _XOnly(pyg.FeaStConv(CHANNELS, CHANNELS, heads=4))
        if name == "SplineConv":
            import torch_spline_conv  # noqa: F401  (PyG's SplineConv needs it)

            return _Pseudo(pyg.SplineConv(CHANNELS, CHANNELS, dim=2, kernel_size=5))
        raise KeyError(name)
    return make


class _XOnly(torch.nn.Module):
    def __init__(self, conv):
        super().__init__()
        self.conv = conv

    def forward(self, x, graph):
        return self.conv(x, graph.edge_index)


class _Pseudo(_XOnly):
    """SplineConv reads the log map as pseudo-coordinates in [0, 1]^2."""

    def forward(self, x, graph):
        log = graph.edge_logmap
        pseudo = (log / (2 * log.norm(dim=-1).max()) + 0.5).clamp(0, 1)
        return self.conv(x, graph.edge_index, pseudo)


def _iso(graph):
    from meshgdl.nn import IsoConv

    return IsoConv(CHANNELS, CHANNELS)


# the slow reference path and FeaStConv need tens of GB and many minutes at 1M nodes on a CPU
SMALL_ONLY = {"GemConv_K2_plain", "FeaStConv"}

LAYERS = {
    "GCNConv": _pyg("GCNConv"),
    "FeaStConv": _pyg("FeaStConv"),
    "SplineConv": _pyg("SplineConv"),
    "IsoConv": _iso,
    "GemConv_K1": _gem(1, True),
    "GemConv_K2": _gem(2, True),
    "GemConv_K2_plain": _gem(2, False),
}


def build_layer(name: str, graph):
    torch.manual_seed(0)
    layer = LAYERS[name](graph)
    x = torch.randn(graph.num_nodes, CHANNELS)
    return layer, x

