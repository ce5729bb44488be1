r"""Triangle meshes as framed graphs.

Vertices become nodes, mesh edges become a pair of directed edges. Vertex normals weight each
corner's face normal by :math:`\sin\theta / (|p| |q|)` (Max 1999; exact for vertices on a sphere); ``e1`` is the tangent part of the edge to the lowest-numbered neighbour (so frames rotate
with the mesh); the log map of edge j -> i is :math:`x_j - x_i` projected onto i's tangent plane and
scaled to the edge length; transport rotates :math:`n_j` onto :math:`n_i`
(:mod:`meshgdl.geometry.tangent`). Edge weights are the cotangent weights
:math:`w_{ij} = \tfrac12(\cot\alpha_{ij} + \cot\beta_{ij})` and node areas are barycentric.
"""
from __future__ import annotations

import logging
import os

import numpy as np
import torch
from torch import Tensor

from ..cache import cached_graph, content_hash
from ..graph import FramedGraph
from .tangent import first_tangent_neighbour, frames_from_reference, framed_edges

log = logging.getLogger("meshgdl")
_VERSION = 1  # bump when the construction changes, so that disk caches are not reused


def mesh_graph(vertices, faces=None, *, reference=None, repair: bool = False, dtype=None,
               cache: bool = True, progress: bool = False) -> FramedGraph:
    r"""Build a :class:`~meshgdl.FramedGraph` from a triangle mesh.

    Args:
        vertices: :math:`[V, 3]` array or tensor, or a ``trimesh.Trimesh`` (then ``faces`` is omitted).
        faces: :math:`[F, 3]` vertex ids, counter-clockwise seen from outside.
        reference (optional): :math:`[V, 3]` directions whose tangent parts become ``e1``
            (default: the edge to the lowest-numbered neighbour).
        repair (bool): merge duplicate vertices and drop unreferenced ones instead of raising;
            ``graph.vertex_map[v]`` then gives the node of input vertex ``v`` (-1 if dropped).
            Zero-area faces are always dropped, with a warning. (default: ``False``)
        dtype: floating dtype of the output (default: ``torch.get_default_dtype()``); the
            geometry is always computed in float64.
        cache (bool): reuse the graph built earlier for the same input, from memory or from the
            disk cache (:func:`meshgdl.set_cache_dir`). (default: ``True``)
        progress (bool): show a progress bar. (default: ``False``)

    Returns:
        A graph with ``pos``, ``frame``, ``edge_index`` (sorted by target, then source),
        ``edge_logmap``, ``edge_transport``, ``edge_weight``, ``edge_reverse``, ``node_area`` and
        ``face`` :math:`[3, F]`.
    """
    if faces is None:
        if not hasattr(vertices, "faces"):
            raise TypeError("mesh_graph needs faces: mesh_graph(vertices, faces) or mesh_graph(trimesh_mesh)")
        vertices, faces = vertices.vertices, vertices.faces
    v = _as_tensor(vertices, torch.float64, "vertices")
    f = _as_tensor(faces, torch.long, "faces")
    ref = None if reference is None else _as_tensor(reference, torch.float64, "reference")
    dtype = dtype or torch.get_default_dtype()

    def build():
        return _build(v, f, ref, repair, progress)

    if cache:
        key = content_hash(v, f, *(() if ref is None else (ref,)), repair=repair, version=_VERSION)
        graph = cached_graph("mesh", key, build)
    else:
        graph = build()
    return _cast(graph, dtype)


def _as_tensor(x, dtype, name) -> Tensor:
    try:
        if not isinstance(x, Tensor):
            x = np.asarray(x)
            x = x if x.flags.writeable else x.copy()  # trimesh hands out read-only arrays
        t = torch.as_tensor(x)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of numbers: {err}") from None
    if dtype == torch.long and t.is_floating_point():
        if not bool((t == t.round()).all()):
            raise ValueError(f"{name} must hold integer vertex ids")
    return t.detach().cpu().to(dtype)


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
    if not bool(torch.isfinite(v).all()):
        bad = int((~torch.isfinite(v)).any(1).nonzero()[0, 0])
        raise ValueError(f"vertices hold NaN or infinite coordinates (first: vertex {bad}); remove or fix them")
    if int(f.min()) < 0 or int(f.max()) >= v.shape[0]:
        raise ValueError(f"faces index vertices outside 0..{v.shape[0] - 1} (range {int(f.min())}..{int(f.max())})")
    if bool(((f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 2] == f[:, 0])).any()):
        raise ValueError("some faces repeat a vertex (e.g. [3, 3, 7]); remove them")


def _square(x: Tensor) -> Tensor:
    """Squared norm of each row, ``[F, 3] -> [F]``."""
    return torch.einsum("fa,fa->f", x, x)


def _mix(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a bijection of uint64 that scatters every input bit."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _merge_duplicates(v: Tensor, f: Tensor, repair: bool):
    """Map duplicate vertices onto their first copy, or raise if not repairing."""
    bits = np.ascontiguousarray(v.numpy()).view(np.uint64)
    # fast path: distinct hashes of the coordinate bits prove that no two vertices are equal
    mixed = _mix(_mix(_mix(bits[:, 0]) ^ bits[:, 1]) ^ bits[:, 2])
    mixed.sort()
    if not (mixed[1:] == mixed[:-1]).any():
        return f, None
    rows = bits.view(np.dtype((np.void, 24))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    if len(first) == len(rows):
        return f, None
    n_dup = len(rows) - len(first)
    if not repair:
        dup = int(np.nonzero(first[inverse] != np.arange(len(rows)))[0][0])
        raise ValueError(
            f"{n_dup} vertices repeat the coordinates of another (e.g. vertex {dup} = vertex "
            f"{int(first[inverse[dup]])}); pass repair=True to merge them (graph.vertex_map tracks ids)"
        )
    log.warning("mesh_graph: merged %d duplicate vertices", n_dup)
    target = torch.as_tensor(first[inverse], dtype=torch.long)
    return target[f], target


def _build(v: Tensor, f: Tensor, ref, repair: bool, progress: bool) -> FramedGraph:
    from tqdm.auto import tqdm

    bar = tqdm(total=5, desc="mesh graph", disable=not progress, unit="step")
    _check_input(v, f)
    f, merged = _merge_duplicates(v, f, repair)
    # zero-area faces carry no geometry: drop them (logged)
    a, b, c = v.index_select(0, f[:, 0]), v.index_select(0, f[:, 1]), v.index_select(0, f[:, 2])
    cross = torch.linalg.cross(b - a, c - a)
    area2 = cross.norm(dim=-1)
    # side k of a face runs from corner k to corner k + 1: |side k|^2
    side_sq = torch.stack([_square(b - a), _square(c - b), _square(a - c)], dim=1)
    degenerate = area2 <= 1e-12 * side_sq[:, 0].mean()
    if bool(degenerate.any()):
        log.warning("mesh_graph: dropped %d zero-area faces", int(degenerate.sum()))
        keep = ~degenerate
        f, cross, area2, side_sq = f[keep], cross[keep], area2[keep], side_sq[keep]
        if f.shape[0] == 0:
            raise ValueError("every face of the mesh has zero area")
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

    edge_index, edge_reverse, inverse, edge_undirected = _edges(f, num_v)
    num_e = edge_undirected.numel() // 2
    bar.update()

    # vertex normals with Max's weights cross / (|p|^2 |q|^2), p and q the sides at the corner
    # (k - 1 and k): exact for vertices on a sphere
    weight = 1 / (side_sq * side_sq.roll(1, dims=1))
    normal = torch.zeros_like(v).index_add_(
        0, f.t().reshape(-1), (weight.t()[..., None] * cross).reshape(-1, 3)
    )
    nn = normal.norm(dim=-1)
    vanishing = nn <= 1e-9 * nn.max()
    if bool(vanishing.any()):
        bad = int(vanishing.nonzero()[0, 0])
        raise ValueError(
            f"the normals of the faces around vertex {bad} cancel out: the mesh folds onto itself there"
        )
    normal = normal / nn[:, None]
    if ref is None:
        ref = first_tangent_neighbour(v, normal, edge_index)
    elif ref.shape != v.shape:
        raise ValueError(f"reference must have shape {list(v.shape)} (one direction per vertex), got {list(ref.shape)}")
    elif vertex_map is not None:
        raise ValueError("reference directions cannot be combined with repair=True; repair the mesh first")
    frame = frames_from_reference(normal, ref)
    bar.update()

    edge_logmap, edge_transport = framed_edges(v, frame, edge_index, edge_reverse=edge_reverse)
    bar.update()

    # cotangent weights: the corner opposite halfedge k lies between sides k + 1 and k + 2, whose
    # dot product is (|s_k|^2 - |s_k+1|^2 - |s_k+2|^2) / 2 (the sides sum to zero) and whose cross
    # product has the norm area2; summed over the (one or two) faces of the edge
    next_sq, last_sq = side_sq.roll(-1, dims=1), side_sq.roll(-2, dims=1)
    cot = (next_sq + last_sq - side_sq) / (2 * area2[:, None])
    weight_und = torch.zeros(num_e, dtype=v.dtype).index_add_(0, inverse, 0.5 * cot.reshape(-1))
    edge_weight = weight_und[edge_undirected]
    node_area = torch.zeros(num_v, dtype=v.dtype)
    for k in range(3):
        node_area.index_add_(0, f[:, k], area2 / 6)
    bar.update()
    bar.close()

    graph = FramedGraph(
        pos=v, frame=frame, edge_index=edge_index, edge_logmap=edge_logmap,
        edge_transport=edge_transport, edge_weight=edge_weight, edge_reverse=edge_reverse,
        node_area=node_area, face=f.t().contiguous(), num_nodes=num_v,
    )
    if vertex_map is not None:
        graph.vertex_map = vertex_map
    return graph.validate()


def _edges(f: Tensor, num_v: int):
    """Directed edges of the faces, both ways, sorted by target then source.

    Returns ``edge_index`` [2, 2E], ``edge_reverse`` [2E], and the undirected edge of every
    halfedge (a->b, b->c, c->a of each face, [3F]) and of every directed edge ([2E]). Raises for
    inconsistently oriented faces. Sorting the halfedges once with numpy replaces ``torch.unique``
    calls and is several times faster.
    """
    faces = f.numpy()
    he_src = faces.reshape(-1)
    he_dst = faces[:, [1, 2, 0]].reshape(-1)
    undirected = np.minimum(he_src, he_dst) * num_v + np.maximum(he_src, he_dst)
    by_edge = _argsort(undirected)
    sorted_keys = undirected[by_edge]
    first = np.empty(len(sorted_keys), dtype=bool)
    first[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    uniq = sorted_keys[starts]
    count = np.diff(np.append(starts, len(sorted_keys)))
    inverse = np.empty_like(by_edge)
    inverse[by_edge] = np.cumsum(first) - 1

    nonmanifold = count > 2
    if nonmanifold.any():
        k = int(uniq[nonmanifold][0])
        log.warning(
            "mesh_graph: %d edges are shared by more than two faces (first: %d-%d); the graph is "
            "built, but face holonomies and the Euler characteristic lose their meaning there",
            int(nonmanifold.sum()), k // num_v, k % num_v,
        )
    # an edge of two faces must run both ways; on a non-manifold edge a repeat is no orientation error
    pair = starts[count == 2]
    a, b = by_edge[pair], by_edge[pair + 1]
    same = he_src[a] == he_src[b]
    if same.any():
        k = int((he_src[a[same]] * num_v + he_dst[a[same]]).min())
        raise ValueError(
            f"faces are inconsistently oriented (edge {k // num_v}->{k % num_v} runs the same way in "
            "two faces); fix the winding, e.g. trimesh.repair.fix_winding(mesh)"
        )
    u, w = uniq // num_v, uniq % num_v
    src = np.concatenate([u, w])
    dst = np.concatenate([w, u])
    order = _argsort(dst * num_v + src)
    num_e = len(uniq)
    rank = np.empty_like(order)
    rank[order] = np.arange(2 * num_e)
    # edge k of the unsorted list (k < E) pairs with k + E
    partner = np.concatenate([np.arange(num_e, 2 * num_e), np.arange(num_e)])
    edge_index = torch.from_numpy(np.stack([src[order], dst[order]]))
    edge_reverse = torch.from_numpy(rank[partner[order]])
    return edge_index, edge_reverse, torch.from_numpy(inverse), torch.from_numpy(order % num_e)


def _argsort(keys: np.ndarray) -> np.ndarray:
    """Stable ``np.argsort`` of non-negative int64 keys.

    Sorting the keys with their positions packed into the low bits lets numpy use its SIMD sort,
    several times faster than ``argsort``; keys too large for that take ``argsort``.
    """
    n = len(keys)
    shift = max(int(n - 1).bit_length(), 1)
    if n == 0 or int(keys.max()) >= 1 << (63 - shift):
        return np.argsort(keys, kind="stable")
    packed = (keys << shift) | np.arange(n)
    packed.sort()
    return packed & ((1 << shift) - 1)


def read_mesh(path: str | os.PathLike):
    """Read ``(vertices [V, 3] float64, faces [F, 3] int64)`` from OBJ, PLY, OFF, STL or GIFTI.

    Vertex order is kept as in the file (per-vertex labels stay aligned), except for STL, which
    stores every triangle separately and is merged by trimesh.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no mesh file at {path}")
    lower = path.lower()
    if lower.endswith((".gii", ".gii.gz")):
        try:
            import nibabel
        except ImportError:
            raise ImportError("reading GIFTI needs nibabel: pip install 'meshgdl[gifti]'") from None
        img = nibabel.load(path)
        try:
            vertices, faces = img.agg_data(("pointset", "triangle"))
        except Exception:
            raise ValueError(f"{path} holds no surface (needs a pointset and a triangle array)") from None
        return np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64)
    import trimesh

    try:
        mesh = trimesh.load(path, process=lower.endswith(".stl"), force="mesh")
    except Exception as err:
        raise ValueError(f"could not read a mesh from {path}: {err}") from None
    if len(mesh.faces) == 0:
        raise ValueError(f"{path} holds no triangles (a point cloud? use point_cloud_graph)")
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)


def load_mesh(path: str | os.PathLike, **kwargs) -> FramedGraph:
    """Read a mesh file (:func:`read_mesh`) and build its graph (:func:`mesh_graph` keywords)."""
    vertices, faces = read_mesh(path)
    return mesh_graph(vertices, faces, **kwargs)
