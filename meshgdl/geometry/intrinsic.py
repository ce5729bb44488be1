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
from .halfedges import FanLayout, MeshEdges, boundary_halfedges, fan_layout, mesh_edges

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


def corner_angles_from_sides(side_sq: Tensor, area2: Tensor) -> Tensor:
    r"""Interior angles ``[F, 3]`` from the squared side lengths ``side_sq`` ``[F, 3]`` (side k
    from corner k to k + 1) and twice the areas ``area2`` ``[F]``: what :func:`corner_angles`
    computes, from quantities the mesh builder holds already.

    Corner k lies between sides k and k + 2, with
    :math:`u \cdot w = (|s_k|^2 + |s_{k+2}|^2 - |s_{k+1}|^2) / 2` and :math:`|u \times w|` = area2;
    atan2 of the two keeps slivers and angles near :math:`\pi` accurate.
    """
    # in place, in the order of 0.5 * (a + b - c): the same rounding, no fresh [F, 3] temporaries
    dot = torch.add(side_sq, side_sq.roll(1, dims=1), out=torch.empty_like(side_sq))
    dot.sub_(side_sq.roll(-1, dims=1)).mul_(0.5)
    return torch.atan2(area2[:, None].expand_as(dot), dot, out=dot)


def intrinsic_angles(pos: Tensor, face: Tensor, edge_index: Tensor | None = None, *,
                     edges: MeshEdges | None = None, layout: FanLayout | None = None,
                     theta: Tensor | None = None):
    r"""Angle :math:`\phi_{ij}` of every edge j -> i in i's intrinsic tangent space.

    Args:
        pos: :math:`[V, 3]` float64 vertex positions.
        face: :math:`[F, 3]` consistently oriented faces.
        edge_index: :math:`[2, E]` both directions of every face edge, sorted by target, then
            source: the order of :func:`~meshgdl.geometry.halfedges.mesh_edges`, which gives the
            edges when ``edges`` is omitted.
        edges, layout, theta (optional): the mesh's :class:`MeshEdges`, :class:`FanLayout` (with
            ``acc``) and corner angles ``[F, 3]``, when the caller has them already.

    Returns:
        ``(phi [E], scale [V], manifold [V] bool)``: ``phi`` measured from the edge to the lowest
        neighbour and rescaled by ``scale`` (:math:`s_i`, 1 where ``manifold`` is false).
    """
    num_v = pos.shape[0]
    f = face.numpy()
    if edges is None:
        edges = mesh_edges(f, num_v)
    theta = (corner_angles(pos, face) if theta is None else theta).reshape(-1).numpy()  # corner 3 f + k
    if layout is None or layout.acc is None:
        layout = fan_layout(f, edges, theta)
    acc, boundary, bad = layout
    vert = f.reshape(-1)
    theta_sum = np.bincount(vert, weights=theta, minlength=num_v)
    scale = np.where(boundary, math.pi, 2 * math.pi) / theta_sum
    scale[bad] = 1.0

    # corner c's first side is the edge nxt -> vert, the reverse of halfedge c; its last side is
    # the edge prev -> vert, along the face's previous halfedge
    he_edge = edges.halfedge_edge
    first_side = edges.edge_reverse.numpy()[he_edge]
    last_side = np.roll(he_edge.reshape(-1, 3), 1, axis=1).reshape(-1)
    unscaled = np.full(len(edges.edge_reverse), np.nan)
    unscaled[last_side] = acc + theta
    unscaled[first_side] = acc  # overrides the same side seen as a last side, which is equal
    # angle 0 is the edge to the lowest neighbour: the first edge of each target (sorted order)
    deg = np.diff(edges.ptr)
    phi = unscaled  # in place: each fresh array of 2E angles costs its page faults again
    phi -= np.repeat(unscaled[np.minimum(edges.ptr[:-1], len(unscaled) - 1)], deg)
    phi *= np.repeat(scale, deg)
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
    on_boundary = boundary_halfedges(mesh_edges(face.cpu().numpy(), num_v))
    boundary = torch.zeros(num_v, dtype=torch.bool, device=flat.device)
    boundary[flat[torch.from_numpy(on_boundary).to(flat.device)]] = True
    scale = (2 * math.pi - math.pi * boundary.to(theta.dtype)) / theta_sum
    return ((scale[face] - 1) * theta).sum(dim=1)


def intrinsic_edges(pos: Tensor, face: Tensor, edge_index: Tensor, edge_reverse: Tensor, frame: Tensor,
                    reference: Tensor | None = None, side_sq: Tensor | None = None, **known):
    r"""``(edge_logmap [E, 2], edge_transport [E])`` of the intrinsic connection.

    ``frame`` supplies the fallback angles at non-manifold vertices; ``reference`` (:math:`[V, 3]`,
    optional) turns each vertex's gauge by the angle of its tangent part from ``frame``'s ``e1``
    (the same turn as building the frames from it), so that angle 0 follows the reference.
    ``known`` passes ``edges``, ``layout`` and ``theta`` on to :func:`intrinsic_angles`; with
    ``edges``, the squared side lengths ``side_sq`` ``[F, 3]`` (side k from corner k to k + 1) give
    the edge lengths without gathering positions.
    """
    j, i = edge_index
    phi, _, manifold = intrinsic_angles(pos, face, edge_index, **known)
    edges = known.get("edges")
    if side_sq is None or edges is None:
        length = torch.linalg.vector_norm(pos.index_select(0, j) - pos.index_select(0, i), dim=-1)
    else:
        side = side_sq.reshape(-1).sqrt().numpy()
        length = np.empty(len(phi))
        length[edges.edge_reverse.numpy()[edges.halfedge_edge]] = side  # the twins: boundary edges
        length[edges.halfedge_edge] = side
        length = torch.from_numpy(length)
    if not bool(manifold.all()):
        # only the edges into non-manifold vertices need the embedding's projected angle
        sel = (~manifold).index_select(0, i).nonzero()[:, 0]
        d = pos.index_select(0, j[sel]) - pos.index_select(0, i[sel])
        tangent = torch.einsum("eab,eb->ea", frame[:, :2].index_select(0, i[sel]), d)
        phi[sel] = torch.atan2(tangent[:, 1], tangent[:, 0])
    if reference is not None:
        turn = torch.atan2((reference * frame[:, 1]).sum(-1), (reference * frame[:, 0]).sum(-1))
        phi = phi - turn[i]
    logmap = torch.empty(len(phi), 2, dtype=phi.dtype)
    torch.cos(phi, out=logmap[:, 0])
    torch.sin(phi, out=logmap[:, 1])
    logmap.mul_(length[:, None])
    transport = phi.index_select(0, edge_reverse)
    torch.sub(phi.add_(math.pi), transport, out=transport)
    return logmap, wrap_angle(transport, inplace=True)
