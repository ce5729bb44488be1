r"""Point clouds as framed graphs: k-nearest-neighbour graphs with estimated, oriented normals.

Each point i receives edges from its k nearest other points j (``scipy.spatial.cKDTree``). Normals,
unless given, are the direction of least variance of the point and its k neighbours (PCA, batched
:math:`3 \times 3` ``eigh`` in float64), oriented consistently after Hoppe et al. 1992: the sign is
carried along a minimum spanning tree of the kNN graph with weights :math:`1 - |n_i \cdot n_j|`,
starting in each connected component from the point farthest from the component's centroid, whose
normal is made to point away from the centroid. Every choice depends on distances and point ids
only, so the graph rotates with its input. Frames, log maps (length :math:`|x_j - x_i|`) and the
transport (the smallest rotation taking :math:`n_j` to :math:`n_i`) come from
:mod:`meshgdl.geometry.tangent`.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..cache import cached_graph, content_hash
from ..graph import FramedGraph
from .mesh import _as_tensor, _cast, _float_dtype
from .tangent import first_tangent_neighbour, frames_from_reference, tangent_logmap, transport_angle

_VERSION = 1  # bump when the construction changes, so that disk caches are not reused


def point_cloud_graph(points, k: int = 16, *, normals=None, reference=None, dtype=None,
                      cache: bool = True, progress: bool = False) -> FramedGraph:
    r"""Build the k-nearest-neighbour :class:`~meshgdl.FramedGraph` of a point cloud.

    Args:
        points: :math:`[N, 3]` array or tensor, :math:`N \ge k + 1`, no two points equal.
        k (int): neighbours each point receives messages from (itself excluded). (default: ``16``)
        normals (optional): :math:`[N, 3]` normals to use as given (normalised, never flipped)
            instead of estimating and orienting them.
        reference (optional): :math:`[N, 3]` directions whose tangent parts become ``e1``
            (default: the displacement to the nearest neighbour off the normal line).
        dtype: floating dtype of the output (default: ``torch.get_default_dtype()``); the
            geometry is always computed in float64.
        cache (bool): reuse the graph built earlier for the same input, from memory or from the
            disk cache (:func:`meshgdl.set_cache_dir`). (default: ``True``)
        progress (bool): show a progress bar. (default: ``False``)

    Returns:
        A graph with ``pos``, ``frame``, ``edge_index`` (sorted by target i, then by the distance
        of the source j, nearest first), ``edge_logmap`` and ``edge_transport``. It carries no
        ``edge_weight`` or ``node_area``: a kNN graph defines no quadrature of its own.
    """
    k = _check_k(k)
    pts = _as_tensor(points, torch.float64, "points")
    nrm = None if normals is None else _as_tensor(normals, torch.float64, "normals")
    ref = None if reference is None else _as_tensor(reference, torch.float64, "reference")
    _check_input(pts, k, nrm, ref)
    dtype = _float_dtype(dtype)

    def build():
        return _build(pts, k, nrm, ref, progress)

    if cache:
        extra = tuple(t for t in (nrm, ref) if t is not None)
        key = content_hash(pts, *extra, k=k, normals=nrm is not None, reference=ref is not None,
                           version=_VERSION)
        graph = cached_graph("points", key, build)
    else:
        graph = build()
    return _cast(graph, dtype)


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int (neighbours per point), got {type(k).__name__}")
    if k < 1:
        raise ValueError(f"k must be at least 1 (neighbours per point), got {k}")
    return int(k)


def _check_input(pts: Tensor, k: int, nrm, ref):
    if pts.dim() != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must have shape [N, 3], got {list(pts.shape)}")
    if not bool(torch.isfinite(pts).all()):
        bad = int((~torch.isfinite(pts)).any(1).nonzero()[0, 0])
        raise ValueError(f"points hold NaN or infinite coordinates (first: point {bad}); remove or fix them")
    if pts.shape[0] < k + 1:
        raise ValueError(
            f"a {k}-nearest-neighbour graph needs at least k + 1 = {k + 1} points, got {pts.shape[0]}; "
            "lower k or add points"
        )
    for name, t in (("normals", nrm), ("reference", ref)):
        if t is None:
            continue
        if t.shape != pts.shape:
            raise ValueError(f"{name} must have shape {list(pts.shape)} (one per point), got {list(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} hold NaN or infinite values (first: point "
                             f"{int((~torch.isfinite(t)).any(1).nonzero()[0, 0])})")
    if nrm is not None and bool((nrm.norm(dim=-1) == 0).any()):
        raise ValueError(f"normals must be non-zero (first zero: point {int((nrm.norm(dim=-1) == 0).nonzero()[0, 0])})")
    if nrm is None and k < 2:
        raise ValueError("estimating normals needs k >= 2 (a plane through at least 3 points); raise k or pass normals=")


def _build(pts: Tensor, k: int, nrm, ref, progress: bool) -> FramedGraph:
    from scipy.spatial import cKDTree
    from tqdm.auto import tqdm

    bar = tqdm(total=4, desc="point cloud graph", disable=not progress, unit="step")
    x = pts.numpy()
    n = x.shape[0]
    dist, nbr = cKDTree(x).query(x, k + 1, workers=-1)
    if bool((dist[:, 1] == 0).any()):
        i = int(np.nonzero(dist[:, 1] == 0)[0][0])
        other = int(nbr[i, 1]) if nbr[i, 1] != i else int(nbr[i, 0])
        raise ValueError(
            f"{int((dist[:, 1] == 0).sum())} points coincide with another point (e.g. point {i} = "
            f"point {other}); remove duplicates first (e.g. numpy.unique(points, axis=0))"
        )
    nbr = nbr[:, 1:]  # without duplicates, a point is its own unique nearest neighbour
    bar.update()

    if nrm is None:
        normal = _oriented_normals(x, nbr)
    else:
        normal = (nrm / nrm.norm(dim=-1, keepdim=True)).numpy()
    bar.update()

    edge_index = torch.stack([torch.from_numpy(nbr.reshape(-1)), torch.arange(n).repeat_interleave(k)])
    normal = torch.from_numpy(normal)
    if ref is None:
        ref = first_tangent_neighbour(pts, normal, edge_index)
    frame = frames_from_reference(normal, ref)
    bar.update()
    edge_logmap = tangent_logmap(pts, frame, edge_index)
    j, i = edge_index
    edge_transport = transport_angle(
        frame.index_select(0, j), frame.index_select(0, i), edge_index,
        hint=". In a point cloud this means two neighbours lie on opposite sides of a thin sheet or have "
             "opposite given normals: lower k, or pass consistently oriented normals=")
    bar.update()
    bar.close()
    graph = FramedGraph(pos=pts, frame=frame, edge_index=edge_index, edge_logmap=edge_logmap,
                        edge_transport=edge_transport, num_nodes=n)
    return graph.validate()


def _oriented_normals(x: np.ndarray, nbr: np.ndarray) -> np.ndarray:
    """PCA normals of each point with its neighbours, oriented along a minimum spanning tree."""
    n, k = nbr.shape
    members = np.concatenate([np.arange(n)[:, None], nbr], axis=1).reshape(-1)
    # torch's gather and batched product are several times faster than numpy's here
    hood = torch.from_numpy(x).index_select(0, torch.from_numpy(members)).view(n, k + 1, 3)
    hood = hood - hood.mean(dim=1, keepdim=True)
    cov = torch.bmm(hood.transpose(1, 2), hood).numpy()
    eigval, eigvec = np.linalg.eigh(cov)  # ascending eigenvalues
    flat = eigval[:, 1] <= 1e-12 * eigval[:, 2]
    if bool(flat.any()):
        i = int(np.nonzero(flat)[0][0])
        raise ValueError(
            f"the neighbourhoods of {int(flat.sum())} points are collinear (first: point {i}), so "
            "their normal is undefined; raise k or pass normals="
        )
    normal = eigvec[:, :, 0]
    return normal * _orientation(x, normal, nbr)[:, None]


def _orientation(x: np.ndarray, normal: np.ndarray, nbr: np.ndarray) -> np.ndarray:
    """Signs ``[N]`` that make normals consistent (Hoppe 1992) and point away from each centroid."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree

    n, k = nbr.shape
    i = np.repeat(np.arange(n), k)
    j = nbr.reshape(-1)
    pair = np.sort(np.minimum(i, j) * n + np.maximum(i, j))
    pair = pair[np.concatenate([[True], pair[1:] != pair[:-1]])]  # each undirected kNN edge once
    a, b = pair // n, pair % n
    # +1 keeps every weight positive (scipy drops zeros) and changes no spanning tree's rank
    weight = 2.0 - np.abs(np.einsum("ea,ea->e", np.take(normal, a, axis=0), np.take(normal, b, axis=0)))
    graph = coo_matrix((weight, (a, b)), shape=(n, n)).tocsr()
    num_comp, label = connected_components(graph, directed=False)
    tree = minimum_spanning_tree(graph).tocoo()

    count = np.bincount(label, minlength=num_comp)
    centroid = np.stack([np.bincount(label, x[:, d], num_comp) for d in range(3)], -1) / count[:, None]
    radius = np.linalg.norm(x - centroid[label], axis=-1)
    seed = _first_max_per_component(radius, label, num_comp)
    seed_sign = _seed_sign(x, normal, label, centroid, seed)

    # root the forest at the seeds: a virtual node n joins every seed, one breadth-first search
    rows = np.concatenate([tree.row, np.full(num_comp, n)])
    cols = np.concatenate([tree.col, seed])
    forest = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n + 1, n + 1)).tocsr()
    _, parent = breadth_first_order(forest, n, directed=False, return_predecessors=True)
    parent = parent[:n]
    parent[seed] = seed
    # sign of each node relative to its parent, then relative to its root by pointer jumping
    sign = np.where(np.einsum("na,na->n", normal, np.take(normal, parent, axis=0)) < 0, -1, 1).astype(np.int8)
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            break
        sign = sign * sign[parent]
        parent = grand
    return sign * seed_sign[label]


def _seed_sign(x, normal, label, centroid, seed) -> np.ndarray:
    """+1 or -1 per component: the sign making the seed's normal point away from the centroid.

    A flat component (the seed's normal perpendicular to its offset from the centroid) has no
    outside; it is oriented so that the seed's offset, turned towards the offset of the point that
    is farthest from that line, turns counter-clockwise about the normal, still a rotation-equivariant rule.
    """
    offset = x[seed] - centroid
    dot = np.einsum("ca,ca->c", normal[seed], offset)
    scale = np.linalg.norm(offset, axis=-1)
    sign = np.where(dot < 0, -1, 1).astype(np.int8)
    flat = np.abs(dot) <= 1e-9 * scale
    if flat.any():
        turn = np.einsum("na,na->n", normal[seed][label],
                         np.cross(offset[label], x - centroid[label]))
        best = _first_max_per_component(np.abs(turn), label, len(seed))
        sign = np.where(flat, np.where(turn[best] < 0, -1, 1), sign).astype(np.int8)
    return sign


def _first_max_per_component(value: np.ndarray, label: np.ndarray, num_comp: int) -> np.ndarray:
    """Index of the largest ``value`` in each component (the smallest index among equals)."""
    if num_comp == 1:
        return np.array([np.argmax(value)])
    by_comp = np.lexsort((-value, label))  # stable: equal values keep index order
    return by_comp[np.searchsorted(label[by_comp], np.arange(num_comp))]


def fibonacci_sphere(n: int):
    """``n`` nearly uniform points on the unit sphere (a Fibonacci lattice): ``[n, 3]`` float64 numpy."""
    import numpy as np

    t = np.arange(n) + 0.5
    z = 1 - 2 * t / n
    r = np.sqrt(1 - z * z)
    phi = t * np.pi * (3 - np.sqrt(5))
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], -1)
