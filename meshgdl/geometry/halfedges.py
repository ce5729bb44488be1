r"""The edge and fan structure of a triangle mesh, from one sort of its halfedges.

Halfedge ``3 t + k`` runs from corner k of face t to corner k + 1; corner ``3 t + k`` is where it
starts. :func:`mesh_edges` sorts the halfedges once by undirected edge and derives everything the
builders need from that order: the directed edges sorted by target then source, the reverse of each,
the corner before each corner around its vertex, and the directed edge each halfedge runs along, so no later step searches
or sorts again. :func:`fan_layout` then lays out the corners around each vertex. All arrays are
numpy; ``edge_index`` and ``edge_reverse`` are returned as tensors, ready for the graph.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor


class MeshEdges(NamedTuple):
    """The edges of a mesh with F faces, V vertices and E undirected edges."""

    edge_index: Tensor  #: [2, 2E] both ways of every edge, sorted by target then source
    edge_reverse: Tensor  #: [2E] id of edge i -> j for every edge j -> i
    halfedge_edge: np.ndarray  #: [3F] the directed edge every halfedge runs along
    before: np.ndarray  #: [3F] corner clockwise before corner c around its vertex, -1 if none
    repeated: np.ndarray  #: [3F] bool: the halfedge's edge lies in more than two faces
    ptr: np.ndarray  #: [V + 1] edges ``ptr[i]:ptr[i + 1]`` end at i


def mesh_edges(f: np.ndarray, num_v: int) -> MeshEdges:
    """:class:`MeshEdges` of faces ``f`` ``[F, 3]`` (int64). Raises for inconsistently oriented faces;
    edges of more than two faces are marked in ``repeated`` (:func:`repeated_edges` lists them)."""
    he_src = f.reshape(-1)
    he_dst = np.roll(f, -1, axis=1).reshape(-1)  # slices: several times faster than f[:, [1, 2, 0]]
    by_edge, keys = _sort_pairs(np.minimum(he_src, he_dst), np.maximum(he_src, he_dst), num_v)
    first = np.empty(len(keys), dtype=bool)
    first[0] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    u, w = np.divmod(keys[starts], num_v)  # the undirected edges u < w, sorted
    num_e = len(starts)
    count = np.diff(starts, append=len(keys))
    inverse = np.empty_like(by_edge)
    rank = np.cumsum(first)
    rank -= 1
    inverse[by_edge] = rank

    nonmanifold = count > 2
    # an edge of two faces must run both ways; on a non-manifold edge a repeat is no orientation error
    pair = starts[count == 2]
    a, b = by_edge[pair], by_edge[pair + 1]
    # gathered from a bool mask: an eighth of the bytes of the vertex ids, so mostly in cache
    downward = he_src > he_dst
    same = downward[a] == downward[b]
    if same.any():
        k = int((he_src[a[same]] * num_v + he_dst[a[same]]).min())
        raise ValueError(
            f"faces are inconsistently oriented (edge {k // num_v}->{k % num_v} runs the same way in "
            "two faces); fix the winding, e.g. trimesh.repair.fix_winding(mesh)"
        )
    # corner c is where halfedge c starts; the corner clockwise before it around its vertex is the
    # one after the twin's tail in the twin's face
    # the next corner in c's face is c + 1, or c - 2 for the last; the steps gathered as bytes
    step = np.tile(np.array([1, 1, -2], dtype=np.int8), len(f))
    before = keys  # dead since u and w: a buffer of 3F already touched
    before.fill(-1)
    before[a], before[b] = b + step[b], a + step[a]

    # Sorted by target then source without a second sort of all 2E directed edges: at target t the
    # edges from lower sources (u -> w = t) all come before those from higher ones (w -> u = t); the
    # latter already run in the order of the undirected edges, the former need a sort by w alone.
    into_hi = np.bincount(w, minlength=num_v)  # edges u -> w into each vertex from below
    into_lo = np.bincount(u, minlength=num_v)  # edges w -> u into each vertex from above
    ptr = np.zeros(num_v + 1, dtype=np.int64)
    np.cumsum(into_hi + into_lo, out=ptr[1:])
    # position = ptr[t] + rank among t's edges from below (resp. + into_hi[t] + rank from above);
    # ptr[t] minus the edges from below before t leaves the edges from above before t, and so on
    ids = np.arange(num_e)
    by_w = argsort(w)
    up = np.empty(num_e, dtype=np.int64)  # position of u -> w
    up[by_w] = ids + (np.cumsum(into_lo) - into_lo)[w[by_w]]
    down = ids + np.cumsum(into_hi)[u]  # position of w -> u
    edge_index = np.empty((2, 2 * num_e), dtype=np.int64)
    edge_index[0, up], edge_index[0, down] = u, w
    # sorted by target: the targets are each vertex repeated by its degree, the running count of
    # the vertex starts, summed in place (np.repeat would touch a fresh array of 2E as well)
    target = edge_index[1]
    target.fill(0)
    starts_at = ptr[1:-1]
    np.add.at(target, starts_at[starts_at < len(target)], 1)
    np.cumsum(target, out=target)
    reverse = np.empty(2 * num_e, dtype=np.int64)
    reverse[up], reverse[down] = down, up
    repeated = nonmanifold[inverse]
    # the halfedge's directed edge: u -> w, or w -> u where it runs down; one gather from the two
    # ways of each edge side by side
    # in the halfedge order's buffer, dead by now, where it is long enough (closed meshes): a fresh
    # array of 2E would cost its page faults again
    both = (by_edge[:2 * num_e] if len(by_edge) >= 2 * num_e else np.empty(2 * num_e, dtype=np.int64)).reshape(-1, 2)
    both[:, 0], both[:, 1] = up, down
    inverse *= 2
    inverse += downward
    he_edge = np.take(both.reshape(-1), inverse, out=rank, mode="clip")  # rank is dead since inverse
    before[repeated] = -1
    return MeshEdges(torch.from_numpy(edge_index), torch.from_numpy(reverse), he_edge, before, repeated, ptr)


def boundary_halfedges(edges: MeshEdges) -> np.ndarray:
    """``[3F]`` bool: the halfedges whose edge lies in one face only (no corner precedes theirs)."""
    return (edges.before < 0) & ~edges.repeated


def repeated_edges(f: np.ndarray, repeated: np.ndarray) -> np.ndarray:
    """``[K, 2]`` the edges of more than two faces as sorted vertex pairs, from ``repeated`` ``[3F]``."""
    ends = np.stack([f.reshape(-1), np.roll(f, -1, axis=1).reshape(-1)], 1)[repeated]
    return np.unique(np.sort(ends, axis=1), axis=0).reshape(-1, 2)


class FanLayout(NamedTuple):
    """The corners around each vertex, laid out counter-clockwise (:func:`fan_layout`)."""

    acc: np.ndarray | None  #: [3F] angle of each corner's first side from its fan's start
    boundary: np.ndarray  #: [V] bool: the vertex has a corner with no predecessor
    bad: np.ndarray  #: [V] bool: the vertex's corners do not form one fan


def fan_layout(f: np.ndarray, edges: MeshEdges, theta: np.ndarray | None = None) -> FanLayout:
    """Lay out each vertex's corners counter-clockwise.

    ``acc[c]`` is the sum of the corner angles ``theta`` ``[3F]`` from the fan's start to corner c's
    first side (the side to the next corner of its face; ``None`` without ``theta``); ``bad`` marks
    vertices whose corners do not form one fan: ends of edges of more than two faces, and pinched
    vertices (two fans meeting at a point). On a mesh whose edges all lie in at most two faces,
    ``bad`` are exactly the pinch vertices (:func:`~meshgdl.geometry.mesh_repair.pinch_vertices`).
    """
    num_v = len(edges.ptr) - 1
    vert = f.reshape(-1)
    pred, repeated = edges.before, edges.repeated
    bad = np.zeros(num_v, dtype=bool)
    bad[vert[repeated]] = True
    boundary = np.zeros(num_v, dtype=bool)
    boundary[vert[pred < 0]] = True
    # edges are sorted by target then source: a vertex's first edge comes from its lowest neighbour
    first_nb = edges.edge_index[0].numpy()[np.minimum(edges.ptr[:-1], len(edges.edge_reverse) - 1)]
    # chains start at a corner with no predecessor (boundary) or, around interior vertices, at the
    # corner whose first side runs to the lowest neighbour; the angle of a corner's first side is
    # then the sum of the corner angles before it, found by pointer doubling (log2 of the degree)
    nxt = np.roll(f, -1, axis=1).reshape(-1)
    root = (pred < 0) | (~boundary[vert] & (nxt == first_nb[vert]))
    ptr = np.where(root, np.arange(len(vert)), pred)
    acc = None if theta is None else np.where(root, 0.0, theta[np.maximum(pred, 0)])
    corners = np.bincount(vert, minlength=num_v)
    # the steps reuse two buffers: a fresh array of 3F entries a step costs its page faults again
    hop, gathered = np.empty_like(ptr), None if acc is None else np.empty_like(acc)
    # a fan of c corners needs 2^k >= c - 1 steps: no test before the largest fan can be done (a
    # step after all chains reached their starts changes nothing: starts point to themselves, at 0)
    most, done = int(corners.max()), False
    for k in range(most.bit_length() + 1):
        # a cycle with no start would point to itself after 2^k steps: test for reaching a start
        if k >= (most - 2).bit_length() and (done := bool(root[ptr].all())):
            break
        if acc is not None:
            acc += np.take(acc, ptr, out=gathered, mode="clip")
        ptr, hop = np.take(ptr, ptr, out=hop, mode="clip"), ptr
    # a fan that never reaches a start is a second cycle at a vertex; two starts are two chains
    if not done:
        bad[vert[~root[ptr]]] = True
    bad[np.flatnonzero(np.bincount(vert[root], minlength=num_v) != 1)] = True
    return FanLayout(acc, boundary, bad)


def _sort_pairs(lo: np.ndarray, hi: np.ndarray, num_v: int):
    """Stable order of the pairs ``(lo, hi)`` and their sorted keys ``lo * num_v + hi``.

    The keys take twice the bits of a vertex id: beside the positions (:func:`argsort`) they fit in
    63 bits up to about 1.3M faces. Larger meshes sort by ``hi``, then stably by ``lo``: two packed
    sorts stay several times faster than numpy's stable ``argsort`` of the full keys. Overwrites
    ``lo`` and ``hi``.
    """
    bits = max(int(num_v - 1).bit_length(), 1)
    n = len(lo)
    shift = max(int(n - 1).bit_length(), 1)
    if 2 * bits + shift <= 63:
        return argsort(lo * num_v + hi, True)
    # written in the buffers of the inputs and three more: every fresh array of n entries costs
    # its page faults again, more than the sorts themselves on meshes of millions of faces
    mask = (1 << shift) - 1
    pos = np.arange(n)
    by_hi = np.left_shift(hi, shift)
    by_hi |= pos
    by_hi.sort()
    first = np.bitwise_and(by_hi, mask)
    by_hi >>= shift  # hi in the order first
    packed = np.take(lo, first, out=hi, mode="clip")
    packed <<= shift
    packed |= pos
    packed.sort()
    second = np.bitwise_and(packed, mask, out=lo)
    order = np.take(first, second, out=pos, mode="clip")
    keys = np.right_shift(packed, shift, out=packed)  # lo in the order of order
    keys *= num_v
    keys += np.take(by_hi, second, out=first, mode="clip")
    return order, keys


def argsort(keys: np.ndarray, return_sorted: bool = False):
    """Stable ``np.argsort`` of non-negative int64 keys (and, with ``return_sorted``, the sorted keys).

    Sorting the keys with their positions packed into the low bits lets numpy use its SIMD sort,
    several times faster than ``argsort``; keys too large for that take ``argsort``.
    """
    n = len(keys)
    shift = max(int(n - 1).bit_length(), 1)
    if n == 0 or int(keys.max()) >= 1 << (63 - shift):
        order = np.argsort(keys, kind="stable")
        return (order, keys[order]) if return_sorted else order
    packed = np.left_shift(keys, shift)
    packed |= np.arange(n)
    packed.sort()
    if not return_sorted:  # the positions overwrite the keys: one array of n fewer to fault in
        return np.bitwise_and(packed, (1 << shift) - 1, out=packed)
    order = packed & ((1 << shift) - 1)
    return order, np.right_shift(packed, shift, out=packed)
