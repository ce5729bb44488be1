"""Small test domains, each as ``(graph, build)``: ``build(pos)`` rebuilds the graph from moved points.

The grid is built here from the shared tangent helpers (:mod:`meshgdl.geometry.tangent`) from
positions, so that a rotated embedding can be rebuilt; ``meshgdl.geometry.grid_graph`` builds
grids from their shape.
"""
from __future__ import annotations

import functools
import math

import torch
import trimesh

from meshgdl.geometry.mesh import load_mesh, mesh_graph
from meshgdl.geometry.tangent import framed_edges, frames_from_reference
from meshgdl.graph import FramedGraph

from ..conftest import require_data

# meshes come with both discrete connections: "<name>" is the intrinsic one (the default), and
# "<name>_normal" the normal-rotation one
DOMAINS = ["mesh", "mesh_normal", "sphere", "sphere_normal", "torus", "points", "grid"]


def _mesh(vertices, faces, connection="intrinsic"):
    faces = torch.as_tensor(faces, dtype=torch.long)
    build = lambda pos: mesh_graph(pos, faces, dtype=torch.float64, cache=False, connection=connection)  # noqa: E731
    return build(torch.as_tensor(vertices, dtype=torch.float64)), build


def point_cloud_graph(pos, k: int = 6, reference=None) -> FramedGraph:
    """The library's kNN graph: edges mostly one way (j among the k nearest of i, not i of j).
    ``reference`` ([N, 3], optional) fixes the direction of e1 instead of the intrinsic choice."""
    from meshgdl.geometry import point_cloud_graph as build

    return build(torch.as_tensor(pos, dtype=torch.float64), k, reference=reference, dtype=torch.float64, cache=False)


def grid_positions(n: int) -> torch.Tensor:
    """Node ``b * n + a`` sits at ``(a, b, 0)``, centred."""
    b, a = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    c = (n - 1) / 2
    return torch.stack([a.reshape(-1) - c, b.reshape(-1) - c, torch.zeros(n * n)], -1).double()


def grid_graph(pos, n: int) -> FramedGraph:
    """8-neighbour grid; every frame has e1 along ``pos[1] - pos[0]`` (the image's x axis)."""
    pos = torch.as_tensor(pos, dtype=torch.float64)
    b, a = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    a, b = a.reshape(-1), b.reshape(-1)
    src, dst = [], []
    for da in (-1, 0, 1):
        for db in (-1, 0, 1):
            ok = (da, db) != (0, 0)
            keep = ok & (a + da >= 0) & (a + da < n) & (b + db >= 0) & (b + db < n)
            dst.append((b * n + a)[keep])
            src.append(((b + db) * n + a + da)[keep])
    edge_index = torch.stack([torch.cat(src), torch.cat(dst)])
    x_axis, y_axis = pos[1] - pos[0], pos[n] - pos[0]
    normal = torch.linalg.cross(x_axis, y_axis).expand(len(pos), 3)
    frame = frames_from_reference(normal, x_axis.expand(len(pos), 3))
    logmap, transport = framed_edges(pos, frame, edge_index)
    return FramedGraph(pos=pos, frame=frame, edge_index=edge_index, edge_logmap=logmap,
                       edge_transport=transport).validate()


def grid_rotation(n: int):
    """The 90 degree counter-clockwise rotation of the image: ``(perm, angles)``.

    Pixel k of the rotated image comes from pixel ``perm[k]``; a vector there turns by +90 degrees,
    i.e. its coordinates change as ``R(-p) v`` with ``p = -pi / 2``.
    """
    pos = grid_positions(n)
    source = torch.stack([pos[:, 1], -pos[:, 0]], -1)          # R^{-1} p
    c = (n - 1) / 2
    a, b = (source[:, 0] + c).round().long(), (source[:, 1] + c).round().long()
    return b * n + a, torch.full((n * n,), -math.pi / 2, dtype=torch.float64)


def domain(name: str):
    """``(graph, build)`` for one of :data:`DOMAINS` (a fresh copy: tests may change it)."""
    graph, build = _domain(name)
    return graph.clone(), build


@functools.lru_cache(maxsize=None)
def _domain(name: str):
    connection = "normal" if name.endswith("_normal") else "intrinsic"
    name = name.removesuffix("_normal")
    if name == "mesh":
        ant = load_mesh(require_data("pyvista", "ant.ply"), dtype=torch.float64, cache=False)
        return _mesh(ant.pos, ant.face.T, connection)
    if name == "sphere":
        m = trimesh.creation.icosphere(2)
        return _mesh(m.vertices, m.faces, connection)
    if name == "torus":
        m = trimesh.creation.torus(major_radius=1.0, minor_radius=0.4, major_sections=16, minor_sections=8)
        return _mesh(m.vertices, m.faces)
    if name == "points":
        gen = torch.Generator().manual_seed(0)
        pos = torch.randn(150, 3, generator=gen, dtype=torch.float64)
        pos = pos / pos.norm(dim=-1, keepdim=True) * torch.tensor([1.0, 0.7, 0.5], dtype=torch.float64)
        return point_cloud_graph(pos), point_cloud_graph
    if name == "grid":
        return grid_graph(grid_positions(8), 8), lambda pos: grid_graph(pos, 8)
    raise KeyError(name)


def randomize_biases(module, seed: int = 0):
    """Give every bias a random non-zero value, so that tests see what training would make of them."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.endswith("bias"):
                param.copy_(torch.randn(param.shape, generator=gen, dtype=param.dtype))
    return module


def check_all(module, x, graph, build, in_type, out_type=None, rtol: float = 1e-10) -> dict:
    """Permutation, gauge and rotation checks (the latter with a rebuild); returns the errors."""
    from meshgdl.testing import assert_gauge_equivariant, assert_permutation_equivariant, assert_rotation_invariant

    return {
        "permutation": assert_permutation_equivariant(module, x, graph, rtol=rtol),
        "gauge": assert_gauge_equivariant(module, x, graph, in_type, out_type, rtol=rtol),
        "rotation": assert_rotation_invariant(module, x, graph, build=build, rtol=rtol),
    }


class Chain(torch.nn.Sequential):
    """Layers called as ``layer(x, graph)`` one after another."""

    def forward(self, x, graph):
        for layer in self:
            x = layer(x, graph)
        return x
