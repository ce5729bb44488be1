r"""Tangent-plane geometry shared by every embedded builder (meshes, point clouds, the sphere).

The connection is the one induced by the unit normals: a tangent vector at j is carried to i by the
smallest rotation that takes :math:`n_j` to :math:`n_i` (rotation about :math:`n_j \times n_i`).
On a sphere with exact normals this is Levi-Civita transport along the great circle; on a mesh it
is the discrete connection of GEM-CNN (``connection="normal"``; meshes default to the intrinsic
one, :mod:`meshgdl.geometry.intrinsic`). ``docs/architecture.md`` says why it was chosen.
"""
from __future__ import annotations

import torch
from torch import Tensor


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise dot product ``[E, 3], [E, 3] -> [E]`` (einsum: several times faster than a sum)."""
    return torch.einsum("ea,ea->e", a, b)


def frames_from_reference(normal: Tensor, reference: Tensor, eps: float = 1e-12) -> Tensor:
    """Frames with ``e1`` along the tangent part of ``reference``: ``[N, 3]``, ``[N, 3]`` -> ``[N, 3, 3]``.

    ``e1 = normalize(r - (r . n) n)``, ``e2 = n x e1``. Raises if a reference is parallel to its normal.
    """
    # written into the frame's rows: no [N, 3] temporaries beside the output
    dtype = torch.promote_types(normal.dtype, reference.dtype)
    frame = torch.empty(normal.shape[0], 3, 3, dtype=dtype, device=normal.device)
    e1, e2, n = frame.unbind(1)
    torch.div(normal, normal.norm(dim=-1, keepdim=True), out=n)
    torch.sub(reference, torch.mul(n, _dot(reference, n)[:, None], out=e1), out=e1)
    norm = e1.norm(dim=-1, keepdim=True)
    bad = norm[:, 0] <= eps * reference.norm(dim=-1).clamp_min(eps)
    if bool(bad.any()):
        raise ValueError(
            f"{int(bad.sum())} reference directions are parallel to their normals (first node "
            f"{int(bad.nonzero()[0, 0])}); the tangent frame is undefined there"
        )
    e1.div_(norm)
    torch.linalg.cross(n, e1, out=e2)
    return frame


def first_tangent_neighbour(pos: Tensor, normal: Tensor, edge_index: Tensor, min_sine: float = 0.05,
                            ptr: Tensor | None = None) -> Tensor:
    """For each target i, the displacement to its first neighbour j (smallest edge id) that is not
    nearly parallel to the normal at i: ``[N, 3]``. Raises for nodes with no such neighbour.

    Choosing by edge order rather than by a fixed axis makes frames rotate with the input. With
    edges sorted by target, ``ptr`` ``[N + 1]`` (edges ``ptr[i]:ptr[i + 1]`` end at i) spares the
    search for each node's first edge.
    """
    j, i = edge_index
    n = normal / normal.norm(dim=-1, keepdim=True)
    num_nodes, num_edges = pos.shape[0], i.numel()
    none = torch.full((num_nodes,), num_edges, dtype=torch.long, device=pos.device)

    def displacement(edges, targets):
        # index_select rather than pos[j]: the same gather, about three times faster on CPU
        return pos.index_select(0, j[edges]) - targets

    def off_normal(d, n_i):
        along, square = _dot(d, n_i), _dot(d, d)
        # |tangent part|^2 = |d|^2 - (d . n)^2, compared without square roots
        return square - along * along > min_sine**2 * square

    # almost always a node's first edge will do: test those, then every edge of the other nodes
    if ptr is None:
        ids = torch.arange(num_edges, device=pos.device)
        first = none.scatter_reduce(0, i, ids, reduce="amin")
    else:
        first = torch.where(ptr[1:] > ptr[:-1], ptr[:-1], none)
    has_edge = first < num_edges
    if bool(has_edge.all()):
        # node k's first edge ends at k: its position and normal need no gather, and where every
        # first edge will do, its displacement is the answer
        d = displacement(first, pos)
        ok = off_normal(d, n)
        if bool(ok.all()):
            return d
    else:
        ok = torch.zeros(num_nodes, dtype=torch.bool, device=pos.device)
        nodes = has_edge.nonzero()[:, 0]
        ok[nodes] = off_normal(displacement(first[nodes], pos.index_select(0, nodes)), n.index_select(0, nodes))
    if not bool(ok[has_edge].all()):
        rest = (~ok).index_select(0, i).nonzero()[:, 0]
        targets = i[rest]
        good = rest[off_normal(displacement(rest, pos.index_select(0, targets)), n.index_select(0, targets))]
        first = torch.where(ok, first, none.scatter_reduce(0, i[good], good, reduce="amin"))
    missing = first == num_edges
    if bool(missing.any()):
        raise ValueError(
            f"{int(missing.sum())} nodes have no neighbour off the normal line (first node "
            f"{int(missing.nonzero()[0, 0])}): isolated nodes or a degenerate neighbourhood"
        )
    return displacement(first, pos.index_select(0, i[first]))


def tangent_logmap(pos: Tensor, frame: Tensor, edge_index: Tensor, length: Tensor | None = None) -> Tensor:
    r"""Log map of each edge in the target's frame: ``[E, 2]``.

    Direction: the displacement :math:`x_j - x_i` projected onto the tangent plane at i; norm:
    ``length`` if given (the geodesic length), else :math:`|x_j - x_i|`.
    """
    j, i = edge_index
    d = pos.index_select(0, j) - pos.index_select(0, i)
    # gathering from a contiguous copy of (e1, e2) is about twice as fast as from a strided view
    tangent_frame = frame[:, :2].reshape(-1, 6).index_select(0, i).view(-1, 2, 3)
    coords = torch.einsum("eab,eb->ea", tangent_frame, d)
    norm = coords.norm(dim=-1, keepdim=True)
    if bool((norm == 0).any()):
        k = int((norm[:, 0] == 0).nonzero()[0, 0])
        raise ValueError(
            f"edge {int(j[k])} -> {int(i[k])} is parallel to the normal or has zero length: its "
            "log map has no direction (duplicate points or a fold in the surface)"
        )
    target = d.norm(dim=-1, keepdim=True) if length is None else length.unsqueeze(-1)
    return coords * (target / norm)


def transport_angle(frame_src: Tensor, frame_dst: Tensor, edges: Tensor | None = None, hint: str = "") -> Tensor:
    r"""The transport angle :math:`a_{ji}` from frames of j (``frame_src``) to frames of i: ``[E]``.

    The smallest rotation taking :math:`n_j` to :math:`n_i` carries :math:`e_{1,j}` to
    :math:`\cos a\, e_{1,i} + \sin a\, e_{2,i}`. Computed without trigonometry of the rotation:
    :math:`R v = c v + k \times v + k (k \cdot v) / (1 + c)` with :math:`k = n_j \times n_i`,
    :math:`c = n_j \cdot n_i`. Raises where two normals point in opposite directions: the rotation
    is not unique there, so the transport is undefined; the message names the pair (as an edge
    ``j -> i`` of ``edges`` ``[2, E]`` when given) and ends with ``hint``.
    """
    nj, ni, e1 = frame_src[:, 2], frame_dst[:, 2], frame_src[:, 0]
    k = torch.linalg.cross(nj, ni)
    c = _dot(nj, ni)[:, None]
    if bool((c <= -1 + 1e-9).any()):
        bad = int((c[:, 0] <= -1 + 1e-9).nonzero()[0, 0])
        where = f"pair {bad}" if edges is None else f"nodes {int(edges[0, bad])} and {int(edges[1, bad])} (edge {int(edges[0, bad])} -> {int(edges[1, bad])})"
        raise ValueError(f"the normals at {where} point in opposite directions: the normal-rotation transport "
                         "along that edge is undefined" + hint)
    moved = c * e1 + torch.linalg.cross(k, e1) + k * (_dot(k, e1)[:, None] / (1 + c))
    xy = torch.einsum("eab,eb->ea", frame_dst[:, :2], moved)
    return torch.atan2(xy[:, 1], xy[:, 0])


def framed_edges(pos: Tensor, frame: Tensor, edge_index: Tensor, length: Tensor | None = None,
                 edge_reverse: Tensor | None = None, hint: str = ""):
    """``(edge_logmap, edge_transport)`` for every edge, from positions and frames.

    With ``edge_reverse`` (the id of edge i -> j for every edge j -> i), the transport is computed
    once a pair and negated for the way back (the inverse rotation): half the work, and exactly
    antisymmetric. Raises, naming the edge, where two neighbouring normals point in opposite
    directions: the rotation taking one to the other is not unique, so the transport is undefined
    (``hint`` is added to the message).
    """
    j, i = edge_index
    # transports first: opposite normals also leave an edge with no log-map direction, and the
    # transport's message names the real cause
    if edge_reverse is None:
        transport = transport_angle(frame.index_select(0, j), frame.index_select(0, i), edge_index, hint)
    else:
        one_way = (j < i).nonzero()[:, 0]
        angle = transport_angle(frame.index_select(0, j[one_way]), frame.index_select(0, i[one_way]),
                                edge_index[:, one_way], hint)
        transport = torch.empty(j.numel(), dtype=angle.dtype, device=angle.device)
        transport[one_way] = angle
        transport[edge_reverse[one_way]] = -angle
    return tangent_logmap(pos, frame, edge_index, length), transport
