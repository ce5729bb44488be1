r"""Coincident vertices, fans and pinch vertices of a triangle mesh.

The faces around a vertex form *fans*: maximal runs of faces that follow each other across shared
edges. A vertex of a manifold surface has one fan (closed inside, open on a boundary); a vertex with
more is a *pinch* vertex, where the surface touches itself. Two vertices at identical coordinates
are merged only where the merge keeps the surface manifold: the copies' faces must join into one
fan across new shared edges (the split vertices of an STL file), every edge stays in at most two
consistently oriented faces, and no new pinch vertex appears. All arrays here are numpy.
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger("meshgdl")


def _mix(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a bijection of uint64 that scatters every input bit."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def coincident_groups(pos: np.ndarray) -> np.ndarray | None:
    """``first[v]``: the lowest vertex with the coordinates of vertex ``v`` (``[V]``), or ``None``
    when all coordinates differ."""
    bits = np.ascontiguousarray(pos, dtype=np.float64).view(np.uint64)
    # fast path: distinct hashes of the coordinate bits prove that no two vertices are equal
    mixed = _mix(_mix(_mix(bits[:, 0]) ^ bits[:, 1]) ^ bits[:, 2])
    mixed.sort()
    if not (mixed[1:] == mixed[:-1]).any():
        return None
    rows = bits.view(np.dtype((np.void, 24))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    if len(first) == len(rows):
        return None
    return first[inverse.ravel()]


def _halfedges(f: np.ndarray, num_v: int):
    """Halfedges a->b of every face (``[3F]``; halfedge ``3 t + k`` leaves corner k of face t) and
    their order sorted by undirected edge: ``(src, dst, key, order, starts, count)``."""
    src = f.reshape(-1)
    dst = f[:, [1, 2, 0]].reshape(-1)
    key = np.minimum(src, dst) * num_v + np.maximum(src, dst)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    count = np.diff(np.r_[starts, len(key)])
    return src, dst, key, order, starts, count


def corner_fans(f: np.ndarray, num_v: int, manifold_only: bool) -> np.ndarray:
    """Fan label of every corner (``[3F]``; corner ``3 t + k`` is corner k of face t).

    Corners of one vertex in two faces get the same label when the faces share an edge at that
    vertex: any shared edge, or (``manifold_only``) only an edge of exactly two faces that run it
    in opposite directions.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    src, _, key, order, starts, count = _halfedges(f, num_v)
    # neighbours in sorted order on one edge: a chain that joins all its halfedges
    joined = key[order[1:]] == key[order[:-1]]
    if manifold_only:
        joined &= np.repeat(count, count)[1:] == 2
    h1, h2 = order[:-1][joined], order[1:][joined]
    if manifold_only:
        keep = src[h1] != src[h2]
        h1, h2 = h1[keep], h2[keep]
    nxt1 = h1 - h1 % 3 + (h1 % 3 + 1) % 3
    nxt2 = h2 - h2 % 3 + (h2 % 3 + 1) % 3
    same = src[h2] == src[h1]
    # halfedge h leaves corner h and reaches corner nxt(h): pair up the corners of each end
    rows = np.r_[h1, nxt1]
    cols = np.r_[np.where(same, h2, nxt2), np.where(same, nxt2, h2)]
    n = f.size
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def fan_count(f: np.ndarray, num_v: int, labels: np.ndarray) -> np.ndarray:
    """Number of fans of every vertex (``[V]``; 0 for a vertex in no face)."""
    pairs = np.unique(f.reshape(-1).astype(np.int64) * len(labels) + labels)
    return np.bincount(pairs // len(labels), minlength=num_v)


def pinch_vertices(f: np.ndarray, num_v: int) -> np.ndarray:
    """Vertices whose faces form more than one fan of faces joined by edges (the surface touches
    itself there), ascending; the ends of an edge of three or more faces are not counted."""
    return np.flatnonzero(fan_count(f, num_v, corner_fans(f, num_v, manifold_only=False)) > 1)


def warn_pinches(f: np.ndarray, num_v: int, pinch: np.ndarray | None = None) -> None:
    """Log the pinch vertices (:func:`pinch_vertices`, unless the caller found them: ``pinch``)."""
    if pinch is None:
        pinch = pinch_vertices(f, num_v)
    if len(pinch):
        log.warning(
            "mesh_graph: %d pinch vertices, where faces that share no edge meet (first: %d); the "
            "graph is built, but each is one node for several sheets of surface, and face "
            "holonomies and the Euler characteristic lose their meaning there",
            len(pinch), int(pinch[0]),
        )


def merge_plan(pos: np.ndarray, f: np.ndarray):
    """Decide which coincident vertices merge.

    Args:
        pos: :math:`[V, 3]` float64 coordinates.
        f: :math:`[F, 3]` int64 faces (without zero-area faces).

    Returns ``None`` when all coordinates differ, else ``(target, kept)``: ``target[v]`` (``[V]``)
    is the lowest vertex of the copies that ``v`` merges with (``v`` itself when it stays), and
    ``kept`` is ``(count, a, b, reason)``: how many copies stay distinct, one such pair ``a < b``
    and why, or ``None``.
    """
    first = coincident_groups(pos)
    if first is None:
        return None
    num_v = len(pos)
    ids = np.arange(num_v)
    orig = f.reshape(-1)
    used = np.zeros(num_v, bool)
    used[orig] = True
    lowest_used = np.full(num_v, num_v)
    np.minimum.at(lowest_used, first[used], ids[used])
    target = np.where(used, lowest_used[first], ids)
    okey = _halfedges(f, num_v)[2]
    reason = {}
    while True:
        mf = target[f]
        # an edge that the merge creates (its halfedges come from different input edges) must lie
        # in at most two faces that run it both ways: otherwise undo the merges at its two ends
        src, dst, _, order, starts, count = _halfedges(mf, num_v)
        sorted_okey = okey[order]
        new = np.add.reduceat(sorted_okey != np.repeat(sorted_okey[starts], count), starts) > 0
        h = order[starts]
        same = np.zeros(len(starts), bool)
        two = count == 2
        same[two] = src[h[two]] == src[order[starts[two] + 1]]
        bad = np.flatnonzero(new & ((count > 2) | same))
        if len(bad):
            k = bad[0]
            why = (f"merging would put edge {src[h[k]]}-{dst[h[k]]} in {count[k]} faces" if count[k] > 2
                   else f"merging would run edge {src[h[k]]}-{dst[h[k]]} the same way in two faces")
            undo = np.isin(target, np.r_[src[h[bad]], dst[h[bad]]]) & (target != ids)
            for v in np.flatnonzero(undo):
                reason.setdefault(int(v), why)
            target[undo] = ids[undo]
            continue
        # copies whose faces join into one fan of the merged vertex merge; the others split off
        refined = _cluster_minimum(orig, corner_fans(mf, num_v, manifold_only=True), num_v)
        refined[~used] = ids[~used]
        if np.array_equal(refined, target):
            break
        for v in np.flatnonzero(refined != target):
            reason.setdefault(int(v), "their faces form separate fans, so merging would make a pinch vertex")
        target = refined
    target = _attach_unused(target, first, used, lowest_used)
    return target, _kept(target, first, used, reason)


def _cluster_minimum(orig: np.ndarray, labels: np.ndarray, num_v: int) -> np.ndarray:
    """Lowest vertex joined to each vertex through shared fans (a vertex -- fan label graph)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = num_v + int(labels.max()) + 1
    graph = coo_matrix((np.ones(len(orig), np.int8), (orig, num_v + labels)), shape=(n, n))
    comp = connected_components(graph, directed=False)[1][:num_v]
    lowest = np.full(comp.max() + 1, num_v)
    np.minimum.at(lowest, comp, np.arange(num_v))
    return lowest[comp]


def _attach_unused(target, first, used, lowest_used):
    """A copy in no face changes no topology: it joins the lowest used copy of its group, and a
    lower id becomes the representative (node order follows the input)."""
    num_v = len(target)
    ids = np.arange(num_v)
    spare = np.flatnonzero(~used & (lowest_used[first] < num_v))
    rep = target[lowest_used[first[spare]]]
    new_rep = ids.copy()
    np.minimum.at(new_rep, rep, spare)
    target = target.copy()
    target[spare] = rep
    target = new_rep[target]
    orphans = ~used & (lowest_used[first] == num_v)  # no copy is used: all are dropped later
    target[orphans] = first[orphans]
    return target


def _kept(target, first, used, reason):
    """``(count, a, b, reason)`` for used copies that stay distinct, or ``None``."""
    u = np.flatnonzero(used)
    pairs = np.unique(np.stack([first[u], target[u]], 1), axis=0)
    extra = np.flatnonzero(pairs[1:, 0] == pairs[:-1, 0])
    if not len(extra):
        return None
    a, b = int(pairs[extra[0], 1]), int(pairs[extra[0] + 1, 1])
    return len(extra), a, b, reason.get(b, reason.get(a, "merging would change the topology"))
