r"""The intrinsic discrete Levi-Civita connection of a triangle mesh's piecewise-flat metric.

The vertex connection of Sharp, Soliman and Crane (2019, "The vector heat method") and of
geometry-central: at vertex i the corner angles :math:`\theta` of its faces (from edge lengths) are
laid out counter-clockwise and rescaled by :math:`s_i = 2\pi / \Theta_i` (:math:`\pi / \Theta_i` on
the boundary), :math:`\Theta_i` the angle sum, so that the fan fills a full turn (a half-turn). The
edge i -> j then has the angle :math:`\phi_{ij}` in i's tangent space, measured from the edge to
i's lowest-numbered neighbour, and

.. math::
    \log_i(j) = l_{ij} (\cos\phi_{ij}, \sin\phi_{ij}), \qquad a_{ji} = \phi_{ij} + \pi - \phi_{ji},

i.e. a vector keeps its angle to the edge as it crosses it (the two triangles unfolded into the
plane). Everything depends on edge lengths only. Around a face the transports add up to
:math:`\sum_{\text{corners}} (s_v - 1)\,\theta` (:func:`corner_defects`): each vertex's angle defect
shared among its faces by corner angle, so the face holonomies of a closed mesh sum to
:math:`\sum_v (2\pi - \Theta_v) = 2\pi\chi` exactly (Descartes), and on a mesh with boundary the
half-turn rescaling adds the boundary's turning angles, so the sum is :math:`2\pi\chi` there too.

Vertices whose faces do not form one fan (non-manifold vertices, or ends of edges shared by more than
two faces) have no such layout: there :math:`\phi_{ij}` is the angle of the edge projected onto the
vertex's tangent plane (the embedding's angle, unscaled), which keeps every quantity defined; such
vertices are logged.
"""
from __future__ import annotations

import logging
import math

import numpy as np
import torch
from torch import Tensor

from ..graph import wrap_angle

log = logging.getLogger("meshgdl")


def corner_angles(pos: Tensor, face: Tensor) -> Tensor:
    r"""Interior angle of every corner: ``pos [V, 3]``, ``face [F, 3]`` -> ``[F, 3]``.

    Corner k of a face lies between the sides u, w to corners k + 1 and k + 2;
    :math:`\theta = \operatorname{atan2}(|u \times w|, u \cdot w)`, a function of the three edge
    lengths only, and accurate for slivers and for angles near :math:`\pi` (unlike the arccosine of
    the law of cosines).
    """
    x = pos.index_select(0, face.reshape(-1)).view(-1, 3, 3)
    u = x.roll(-1, dims=1) - x
    w = x.roll(-2, dims=1) - x
    return torch.atan2(torch.linalg.cross(u, w).norm(dim=-1), torch.einsum("fka,fka->fk", u, w))


def halfedge_twins(face: np.ndarray, num_v: int):
    """Twin of every halfedge (``3f + k`` runs from corner k to k + 1), or -1 on the boundary;
    and a mask of halfedges on edges of more than two faces."""
    src = face.reshape(-1)
    dst = np.roll(face, -1, axis=1).reshape(-1)
    key = src * num_v + dst
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    pos = np.searchsorted(sorted_key, dst * num_v + src)
    pos = np.minimum(pos, len(key) - 1)
    found = sorted_key[pos] == dst * num_v + src
    twin = np.where(found, order[pos], -1)
    # an edge of more than two faces repeats a direction (a same-direction repeat was refused before)
    repeated = np.zeros(len(key), dtype=bool)
    dup = sorted_key[1:] == sorted_key[:-1]
    repeated[order[1:][dup]] = repeated[order[:-1][dup]] = True
    if found.any():
        repeated |= np.where(found, repeated[np.where(found, twin, 0)], False)
    return twin, repeated


def _fans(f: np.ndarray, theta: np.ndarray, num_v: int):
    """Lay out each vertex's corners counter-clockwise: ``(acc [3F], boundary [V], bad [V])``.

    ``acc[c]`` is the sum of the corner angles from the fan's start to corner c's first side (the
    side to the next corner of its face); ``bad`` marks vertices whose corners do not form one
    fan: ends of edges of more than two faces, and pinched vertices (two fans meeting at a point).
    """
    vert = f.reshape(-1)
    twin, repeated = halfedge_twins(f, num_v)
    # the corner clockwise before c around its vertex: the corner whose second side is c's first
    # side, i.e. the corner after the twin's tail in the twin's face
    pred = np.where(twin >= 0, twin - twin % 3 + (twin + 1) % 3, -1)
    pred[repeated] = -1
    bad = np.zeros(num_v, dtype=bool)
    bad[vert[repeated]] = True
    boundary = np.zeros(num_v, dtype=bool)
    boundary[vert[pred < 0]] = True
    first_nb = np.full(num_v, np.iinfo(np.int64).max)
    np.minimum.at(first_nb, vert, np.minimum(f[:, [1, 2, 0]].reshape(-1), f[:, [2, 0, 1]].reshape(-1)))
    # chains start at a corner with no predecessor (boundary) or, around interior vertices, at the
    # corner whose first side runs to the lowest neighbour; the angle of a corner's first side is
    # then the sum of the corner angles before it, found by pointer doubling (log2 of the degree)
    nxt = f[:, [1, 2, 0]].reshape(-1)
    root = (pred < 0) | (~boundary[vert] & (nxt == first_nb[vert]))
    ptr = np.where(root, np.arange(len(vert)), pred)
    acc = np.where(root, 0.0, theta[np.maximum(pred, 0)])
    for _ in range(int(np.bincount(vert).max()).bit_length() + 1):
        # a cycle with no start would point to itself after 2^k steps: test for reaching a start
        if root[ptr].all():
            break
        acc = acc + acc[ptr]
        ptr = ptr[ptr]
    # a fan that never reaches a start is a second cycle at a vertex; two starts are two chains
    bad[vert[~root[ptr]]] = True
    bad[np.flatnonzero(np.bincount(vert[root], minlength=num_v) != 1)] = True
    return acc, boundary, bad


def nonmanifold_edges(face: Tensor, num_v: int) -> Tensor:
    """Edges shared by more than two faces, as sorted vertex pairs: ``[K, 2]``."""
    f = face.cpu().numpy()
    repeated = halfedge_twins(f, num_v)[1]
    ends = np.stack([f.reshape(-1), np.roll(f, -1, axis=1).reshape(-1)], 1)[repeated]
    return torch.from_numpy(np.unique(np.sort(ends, axis=1), axis=0).reshape(-1, 2))


def intrinsic_angles(pos: Tensor, face: Tensor, edge_index: Tensor):
    r"""Angle :math:`\phi_{ij}` of every edge j -> i in i's intrinsic tangent space.

    Args:
        pos: :math:`[V, 3]` float64 vertex positions.
        face: :math:`[F, 3]` consistently oriented faces.
        edge_index: :math:`[2, E]` both directions of every face edge, sorted by target, then source.

    Returns:
        ``(phi [E], scale [V], manifold [V] bool)``: ``phi`` measured from the edge to the lowest
        neighbour and rescaled by ``scale`` (:math:`s_i`, 1 where ``manifold`` is false).
    """
    num_v = pos.shape[0]
    f = face.numpy()
    theta = corner_angles(pos, face).reshape(-1).numpy()  # corner c = 3 f + k
    vert, nxt = f.reshape(-1), f[:, [1, 2, 0]].reshape(-1)
    acc, boundary, bad = _fans(f, theta, num_v)
    theta_sum = np.bincount(vert, weights=theta, minlength=num_v)
    scale = np.where(boundary, math.pi, 2 * math.pi) / theta_sum
    scale[bad] = 1.0

    j, i = edge_index.numpy()
    edge_key = i * num_v + j
    first_side = np.searchsorted(edge_key, vert * num_v + nxt)
    last_side = np.searchsorted(edge_key, vert * num_v + f[:, [2, 0, 1]].reshape(-1))
    unscaled = np.full(len(j), np.nan)
    unscaled[last_side] = acc + theta
    unscaled[first_side] = acc  # overrides the same side seen as a last side, which is equal
    # angle 0 is the edge to the lowest neighbour: the first edge of each target (sorted order)
    start = np.searchsorted(i, np.arange(num_v))
    phi = scale[i] * (unscaled - unscaled[start][i])
    if bad.any():
        log.warning(
            "mesh_graph: %d vertices have faces that do not form one fan (first: vertex %d); their "
            "tangent angles are the embedding's projected angles", int(bad.sum()), int(np.flatnonzero(bad)[0]),
        )
    return torch.from_numpy(phi), torch.from_numpy(scale), torch.from_numpy(~bad)


def corner_defects(pos: Tensor, face: Tensor) -> Tensor:
    r"""Each face's share of its vertices' angle defects: :math:`\sum_{\text{corners}} (s_v - 1)\theta`.

    ``pos [V, 3]``, ``face [F, 3]`` -> ``[F]``. This is the face holonomy of the intrinsic
    connection, without wrapping; it needs only edge lengths and the faces.
    """
    theta = corner_angles(pos, face)
    num_v = pos.shape[0]
    flat = face.reshape(-1)
    theta_sum = theta.new_zeros(num_v).index_add_(0, flat, theta.reshape(-1))
    twin, _ = halfedge_twins(face.cpu().numpy(), num_v)
    boundary = torch.zeros(num_v, dtype=torch.bool, device=flat.device)
    boundary[flat[torch.from_numpy(twin < 0).to(flat.device)]] = True
    scale = (2 * math.pi - math.pi * boundary.to(theta.dtype)) / theta_sum
    return ((scale[face] - 1) * theta).sum(dim=1)


def intrinsic_edges(pos: Tensor, face: Tensor, edge_index: Tensor, edge_reverse: Tensor, frame: Tensor,
                    reference: Tensor | None = None):
    r"""``(edge_logmap [E, 2], edge_transport [E])`` of the intrinsic connection.

    ``frame`` supplies the fallback angles at non-manifold vertices; ``reference`` (:math:`[V, 3]`,
    optional) turns each vertex's gauge by the angle of its tangent part from ``frame``'s ``e1``
    (the same turn as building the frames from it), so that angle 0 follows the reference.
    """
    j, i = edge_index
    phi, _, manifold = intrinsic_angles(pos, face, edge_index)
    d = pos.index_select(0, j) - pos.index_select(0, i)
    tangent = torch.einsum("eab,eb->ea", frame[:, :2].index_select(0, i), d)
    projected = torch.atan2(tangent[:, 1], tangent[:, 0])
    phi = torch.where(manifold[i], phi, projected)
    if reference is not None:
        turn = torch.atan2((reference * frame[:, 1]).sum(-1), (reference * frame[:, 0]).sum(-1))
        phi = phi - turn[i]
    length = d.norm(dim=-1, keepdim=True)
    logmap = length * torch.stack([torch.cos(phi), torch.sin(phi)], dim=-1)
    transport = phi + math.pi - phi[edge_reverse]
    return logmap, wrap_angle(transport)
