r"""Triangle meshes as framed graphs.

Vertices become nodes, mesh edges become a pair of directed edges. Vertex normals weight each
corner's face normal by :math:`\sin\theta / (|p| |q|)` (Max 1999; exact for vertices on a sphere);
``e1`` is the tangent part of the edge to the lowest-numbered neighbour (so frames rotate with the
mesh). Log maps and transports come from the chosen connection: the intrinsic Levi-Civita
connection of the piecewise-flat metric (:mod:`meshgdl.geometry.intrinsic`, the default), or the
rotation of normals (:mod:`meshgdl.geometry.tangent`: the log map of edge j -> i is
:math:`x_j - x_i` projected onto i's tangent plane and scaled to the edge length, and transport
rotates :math:`n_j` onto :math:`n_i`). Edge weights are the cotangent weights
:math:`w_{ij} = \tfrac12(\cot\alpha_{ij} + \cot\beta_{ij})` and node areas are barycentric.
"""
from __future__ import annotations

import logging
import os

import numpy as np
import torch
from torch import Tensor

from ..cache import cached_graph, content_hash
from ..graph import FramedGraph, all_finite
from .halfedges import fan_layout, mesh_edges, repeated_edges
from .intrinsic import corner_angles_from_sides, intrinsic_edges
from .mesh_io import read_mesh  # noqa: F401  (read_mesh was defined here; keep it importable)
from .mesh_repair import merge_plan, warn_pinches
from .tangent import first_tangent_neighbour, frames_from_reference, framed_edges

log = logging.getLogger("meshgdl")
_VERSION = 3  # bump when the construction changes, so that disk caches are not reused
_CONNECTIONS = {"intrinsic", "normal"}


def mesh_graph(vertices, faces=None, *, reference=None, repair: bool = False, dtype=None,
               cache: bool = True, progress: bool = False, connection: str = "intrinsic") -> FramedGraph:
    r"""Build a :class:`~meshgdl.FramedGraph` from a triangle mesh.

    Args:
        vertices: :math:`[V, 3]` array or tensor (any strides, read-only too), or a
            ``trimesh.Trimesh`` (then ``faces`` is omitted).
        faces: :math:`[F, 3]` vertex ids, counter-clockwise seen from outside (``faces[:, ::-1]``
            flips them).
        reference (optional): :math:`[V, 3]` directions whose tangent parts become ``e1``
            (default: the edge to the lowest-numbered neighbour).
        repair (bool): merge split copies of a vertex and drop vertices in no face instead of
            raising. Two vertices at identical coordinates merge only when the merged mesh stays
            manifold: their faces join into one fan across new shared edges (the split vertices
            of an STL file or a face soup), every edge stays in at most two faces that run it both
            ways, and no pinch vertex appears; a copy in no face merges with a used one. Other
            coincident vertices stay distinct, with a warning naming a pair and why: coincident
            positions alone are no defect, so without ``repair`` such a mesh builds too, and only
            copies that would merge raise. ``graph.vertex_map[v]`` gives the node of input vertex
            ``v`` (-1 if dropped) whenever a vertex merged or was dropped. A repair never changes
            the topology of a manifold input. Always, with or without ``repair``: zero-area faces
            (these include every face with two coincident corners, so no edge has zero length)
            are dropped, and non-manifold edges and pinch vertices are kept; all three are logged
            as warnings. (default: ``False``)
        dtype: floating dtype of the output: a ``torch.dtype``, a numpy dtype, or a name such as
            ``"float32"`` or ``"torch.float64"`` (default: ``torch.get_default_dtype()``); the
            geometry is always computed in float64. Integer dtypes are refused.
        cache (bool): reuse the graph built earlier for the same input, from memory or from the
            disk cache (:func:`meshgdl.set_cache_dir`). (default: ``True``)
        progress (bool): show a progress bar. (default: ``False``)
        connection (str): ``"intrinsic"``, the discrete Levi-Civita connection of the mesh's
            piecewise-flat metric (:mod:`meshgdl.geometry.intrinsic`: edge lengths only, face
            holonomies sum to :math:`2\pi\chi` on every manifold mesh), or ``"normal"``, the
            rotation of normals of GEM-CNN (:mod:`meshgdl.geometry.tangent`: exact on a sphere).
            ``docs/architecture.md`` compares them. (default: ``"intrinsic"``)

    Returns:
        A graph with ``pos``, ``frame``, ``edge_index`` (sorted by target, then source),
        ``edge_logmap``, ``edge_transport``, ``edge_weight``, ``edge_reverse``, ``node_area``,
        ``face`` :math:`[3, F]` and ``connection`` (the string).
    """
    if connection not in _CONNECTIONS:
        raise ValueError(f"connection must be one of {sorted(_CONNECTIONS)}, got {connection!r}")
    if faces is None:
        if not hasattr(vertices, "faces"):
            raise TypeError("mesh_graph needs faces: mesh_graph(vertices, faces) or mesh_graph(trimesh_mesh)")
        vertices, faces = vertices.vertices, vertices.faces
    v = _as_tensor(vertices, torch.float64, "vertices")
    f = _as_tensor(faces, torch.long, "faces")
    ref = None if reference is None else _as_tensor(reference, torch.float64, "reference")
    dtype = _float_dtype(dtype)

    def build():
        return _build(v, f, ref, repair, progress, connection)

    if cache:
        key = content_hash(v, f, *(() if ref is None else (ref,)), repair=repair, version=_VERSION,
                           connection=connection)
        graph = cached_graph("mesh", key, build)
    else:
        graph = build()
    return _cast(graph, dtype)


def _as_tensor(x, dtype, name) -> Tensor:
    """A CPU tensor of ``dtype`` from any array-like: strided, read-only or non-contiguous."""
    try:
        if isinstance(x, Tensor):
            t = x.detach().cpu()
        else:
            # torch refuses negative strides (``faces[:, ::-1]``) and warns on read-only arrays
            x = np.asarray(x)
            t = torch.from_numpy(np.array(x, copy=True) if x.dtype.kind != "O" else x.astype(float))
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of numbers: {err}") from None
    if dtype == torch.long and t.is_floating_point():
        if not bool((t == t.round()).all()):
            raise ValueError(f"{name} must hold integer vertex ids")
    return t.to(dtype).contiguous()


_FLOAT_DTYPES = "torch.float16, torch.bfloat16, torch.float32, torch.float64 (or numpy's, or names such as 'float64')"


def _float_dtype(dtype) -> torch.dtype:
    """A floating ``torch.dtype`` from a torch or numpy dtype or its name (``None``: the default)."""
    if dtype is None:
        return torch.get_default_dtype()
    resolved = dtype
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype.removeprefix("torch."), None)
    elif not isinstance(dtype, torch.dtype):
        try:
            resolved = torch.from_numpy(np.empty(0, dtype=np.dtype(dtype))).dtype
        except (TypeError, ValueError):
            resolved = None
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ValueError(f"dtype must be a floating dtype, one of {_FLOAT_DTYPES}; got {dtype!r}")
    return resolved


def _cast(graph: FramedGraph, dtype) -> FramedGraph:
    for key, value in graph.items():
        if isinstance(value, Tensor) and value.is_floating_point():
            graph[key] = value.to(dtype)
    return graph


def _check_input(v: Tensor, f: Tensor):
    if v.dim() != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must have shape [V, 3], got {list(v.shape)}")
    if f.dim() != 2 or f.shape[1] != 3:
        raise ValueError(f"faces must have shape [F, 3] (triangles), got {list(f.shape)}; triangulate polygons first")
    if v.shape[0] == 0 or f.shape[0] == 0:
        raise ValueError(f"the mesh is empty ({v.shape[0]} vertices, {f.shape[0]} faces)")
    if not all_finite(v):
        bad = int((~torch.isfinite(v)).any(1).nonzero()[0, 0])
        raise ValueError(f"vertices hold NaN or infinite coordinates (first: vertex {bad}); remove or fix them")
    if int(f.min()) < 0 or int(f.max()) >= v.shape[0]:
        raise ValueError(f"faces index vertices outside 0..{v.shape[0] - 1} (range {int(f.min())}..{int(f.max())})")
    if bool(((f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 2] == f[:, 0])).any()):
        raise ValueError("some faces repeat a vertex (e.g. [3, 3, 7]); remove them")


def _merge_duplicates(v: Tensor, f: Tensor, repair: bool):
    """Merge coincident vertices where the surface stays manifold (:func:`merge_plan`); without
    ``repair``, raise if any would merge. Returns the faces and ``target`` [V] (or ``None``)."""
    plan = merge_plan(v.numpy(), f.numpy())
    if plan is None:
        return f, None
    target, kept = plan
    if kept is not None:
        n, a, b, why = kept
        log.warning(
            "mesh_graph: kept %d vertices that share the coordinates of another as distinct vertices "
            "(e.g. %d and %d: %s)", n, a, b, why,
        )
    moved = np.flatnonzero(target != np.arange(len(target)))
    if not len(moved):
        return f, None
    if not repair:
        raise ValueError(
            f"{len(moved)} vertices repeat the coordinates of another and their faces join up when "
            f"merged, e.g. split along an edge as in STL files (vertex {moved[0]} = vertex "
            f"{target[moved[0]]}); pass repair=True to merge them (graph.vertex_map tracks ids)"
        )
    log.warning("mesh_graph: merged %d duplicate vertices", len(moved))
    target = torch.from_numpy(target)
    return target[f], target


def _build(v: Tensor, f: Tensor, ref, repair: bool, progress: bool, connection: str = "intrinsic") -> FramedGraph:
    from tqdm.auto import tqdm

    bar = tqdm(total=5, desc="mesh graph", disable=not progress, unit="step")
    _check_input(v, f)
    # zero-area faces carry no geometry: drop them (logged); this drops every face with two
    # coincident corners, so no edge of zero length remains, and merging copies changes no area
    corner = v.index_select(0, f.reshape(-1)).view(-1, 3, 3)
    # side k of a face runs from corner k to corner k + 1; c - a is minus side 2, exactly. Written
    # in place: every fresh array of this size costs its page faults again (most of the time of
    # a build of millions of faces)
    side = torch.empty_like(corner)
    torch.sub(corner[:, 1:], corner[:, :2], out=side[:, :2])
    torch.sub(corner[:, 0], corner[:, 2], out=side[:, 2])
    cross = torch.linalg.cross(side[:, 0], -side[:, 2])
    area2 = torch.linalg.vector_norm(cross, dim=-1)
    side_sq = torch.einsum("fka,fka->fk", side, side)
    del corner, side
    degenerate = area2 <= 1e-12 * side_sq[:, 0].mean()
    if bool(degenerate.any()):
        log.warning("mesh_graph: dropped %d zero-area faces", int(degenerate.sum()))
        keep = ~degenerate
        f, cross, area2, side_sq = f[keep], cross[keep], area2[keep], side_sq[keep]
        if f.shape[0] == 0:
            raise ValueError("every face of the mesh has zero area")
    f, merged = _merge_duplicates(v, f, repair)
    bar.update()

    used = torch.zeros(v.shape[0], dtype=torch.bool).index_fill_(0, f.reshape(-1), True)
    vertex_map = None
    if not bool(used.all()):
        unused = (~used).nonzero()[:, 0]
        if merged is not None:
            unused = unused[merged[unused] == unused]  # merged copies are not reported twice
        if not repair and len(unused):
            raise ValueError(
                f"{len(unused)} vertices belong to no face (first: {int(unused[0])}); remove them "
                "(trimesh: mesh.remove_unreferenced_vertices()) or pass repair=True"
            )
        if len(unused):
            log.warning("mesh_graph: dropped %d vertices that belong to no face", len(unused))
        new_id = torch.cumsum(used.long(), 0) - 1
        vertex_map = torch.where(used, new_id, torch.full_like(new_id, -1))
        v, f = v[used], new_id[f]
    if merged is not None:
        vertex_map = merged if vertex_map is None else vertex_map[merged]
    num_v = v.shape[0]
    edges = mesh_edges(f.numpy(), num_v)
    if edges.repeated.any():
        pairs = repeated_edges(f.numpy(), edges.repeated)
        log.warning(
            "mesh_graph: %d edges are shared by more than two faces (first: %d-%d); the graph is "
            "built, but face holonomies and the Euler characteristic lose their meaning there",
            len(pairs), pairs[0, 0], pairs[0, 1],
        )
    edge_index, edge_reverse = edges.edge_index, edges.edge_reverse
    theta = corner_angles_from_sides(side_sq, area2) if connection == "intrinsic" else None
    layout = fan_layout(f.numpy(), edges, None if theta is None else theta.reshape(-1).numpy())
    # with every edge in at most two faces the layout's non-fans are the pinch vertices; else the
    # fans must also join across edges of more faces, which the layout does not follow
    warn_pinches(f.numpy(), num_v, None if edges.repeated.any() else np.flatnonzero(layout.bad))
    bar.update()

    # vertex normals with Max's weights cross / (|p|^2 |q|^2), p and q the sides at the corner
    # (k - 1 and k): exact for vertices on a sphere
    weight = side_sq.roll(1, dims=1).mul_(side_sq).reciprocal_()
    normal = torch.zeros_like(v)
    term = torch.empty_like(cross)
    for k in range(3):
        normal.index_add_(0, f[:, k], torch.mul(cross, weight[:, k, None], out=term))
    del term
    nn = normal.norm(dim=-1)
    vanishing = nn <= 1e-9 * nn.max()
    if bool(vanishing.any()):
        bad = int(vanishing.nonzero()[0, 0])
        raise ValueError(
            f"the normals of the faces around vertex {bad} cancel out: the mesh folds onto itself there"
        )
    normal = normal / nn[:, None]
    if ref is not None and ref.shape != v.shape:
        raise ValueError(f"reference must have shape {list(v.shape)} (one direction per vertex), got {list(ref.shape)}")
    if ref is not None and vertex_map is not None:
        raise ValueError("reference directions cannot be combined with repair=True; repair the mesh first")
    ptr = torch.from_numpy(edges.ptr)
    frame = frames_from_reference(normal, first_tangent_neighbour(v, normal, edge_index, ptr=ptr) if ref is None else ref)
    bar.update()

    if connection == "normal":
        hint = "; the mesh folds sharply there: connection='intrinsic' needs no normals"
        edge_logmap, edge_transport = framed_edges(v, frame, edge_index, edge_reverse=edge_reverse, hint=hint)
    else:
        default = frame if ref is None else frames_from_reference(normal, first_tangent_neighbour(v, normal, edge_index, ptr=ptr))
        edge_logmap, edge_transport = intrinsic_edges(v, f, edge_index, edge_reverse, default, ref,
                                                      edges=edges, layout=layout, theta=theta,
                                                      side_sq=side_sq)
    bar.update()

    # cotangent weights: the corner opposite halfedge k lies between sides k + 1 and k + 2, whose
    # dot product is (|s_k|^2 - |s_k+1|^2 - |s_k+2|^2) / 2 (the sides sum to zero) and whose cross
    # product has the norm area2; summed over the (one or two) faces of the edge
    half_cot = side_sq.roll(-1, dims=1).add_(side_sq.roll(-2, dims=1)).sub_(side_sq)
    half_cot.div_(2 * area2[:, None]).mul_(0.5)
    half = np.bincount(edges.halfedge_edge, weights=half_cot.reshape(-1).numpy(), minlength=edge_index.shape[1])
    edge_weight = torch.from_numpy(half + half[edges.edge_reverse.numpy()])
    node_area = torch.from_numpy(np.bincount(f.reshape(-1).numpy(), weights=(area2 / 6).repeat_interleave(3).numpy(),
                                             minlength=num_v))
    bar.update()
    bar.close()

    graph = FramedGraph(
        pos=v, frame=frame, edge_index=edge_index, edge_logmap=edge_logmap,
        edge_transport=edge_transport, edge_weight=edge_weight, edge_reverse=edge_reverse,
        node_area=node_area, face=f.t().contiguous(), num_nodes=num_v, connection=connection,
    )
    if vertex_map is not None:
        graph.vertex_map = vertex_map
    return graph.validate()


def load_mesh(path: str | os.PathLike, **kwargs) -> FramedGraph:
    """Read a mesh file (:func:`~meshgdl.geometry.read_mesh`, polygons triangulated) and build
    its graph (:func:`mesh_graph` keywords)."""
    vertices, faces = read_mesh(path)
    return mesh_graph(vertices, faces, **kwargs)
