"""Holonomy of closed loops of edges: the gauge-invariant curvature of a framed graph."""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from ..graph import FramedGraph, wrap_angle


def loop_holonomy(graph: FramedGraph, loops: Tensor) -> Tensor:
    r"""Holonomy around each closed loop ``x_0 -> x_1 -> ... -> x_{m-1} -> x_0``: ``[L, m]`` nodes.

    For tangent frames it is the sum of transport angles along the way, in :math:`(-\pi, \pi]`:
    :math:`\sum_t a_{x_t x_{t+1}}` (``[L]``). A vector carried once around the loop comes back turned
    by this angle, which is the integral of Gaussian curvature inside a counter-clockwise loop (seen
    from the side the normals point to), modulo :math:`2\pi`.

    For lattices it is the ordered product of links
    :math:`U_{x_0 x_1} U_{x_1 x_2} \cdots U_{x_{m-1} x_0}` (``[L, n, n]``), which transforms as
    :math:`W_{x_0} P W_{x_0}^\dagger`; for the loop :math:`x, x+\mu, x+\mu+\nu, x+\nu` it is the
    plaquette :math:`U_{x,\mu} U_{x+\mu,\nu} U_{x+\nu,\mu}^\dagger U_{x,\nu}^\dagger`.
    """
    loops = torch.as_tensor(loops, dtype=torch.long, device=graph.edge_index.device)
    if loops.dim() != 2 or loops.shape[1] < 2:
        raise ValueError(f"loops must have shape [L, m] with m >= 2, got {list(loops.shape)}")
    nxt = loops.roll(-1, dims=1)
    if "link" in graph and graph.link is not None:
        # link[e] is U_ij on edge j -> i, so the step x_t -> x_{t+1} of the product uses edge x_{t+1} -> x_t
        eid = graph.edge_id(nxt.flatten(), loops.flatten()).view(loops.shape)
        out = graph.link[eid[:, 0]]
        for t in range(1, loops.shape[1]):
            out = out @ graph.link[eid[:, t]]
        return out
    eid = graph.edge_id(loops.flatten(), nxt.flatten()).view(loops.shape)
    return wrap_angle(graph.edge_transport[eid].sum(dim=1))


def face_holonomy(graph: FramedGraph) -> Tensor:
    r"""Holonomy of every face of a mesh graph, following the face's orientation, unwrapped: ``[F]``.

    The transports around a face are known only modulo :math:`2\pi`; the connection fixes the turn:
    :math:`h = \ell + \operatorname{wrap}(\sum a - \ell)` with the lift :math:`\ell` computed from
    the geometry, so the value is still measured from ``edge_transport`` (and ``wrap(...)`` is
    rounding-small on a graph built by :func:`~meshgdl.geometry.mesh_graph`).

    - ``graph.connection == "intrinsic"``: :math:`\ell = \sum_{\text{corners}} (s_v - 1)\theta`,
      the face's share of its vertices' angle defects (:func:`~meshgdl.geometry.intrinsic.corner_defects`).
    - ``"normal"`` (and graphs saved without the attribute): :math:`\ell` is the signed area of the
      spherical triangle of the face's three vertex normals (Van Oosterom and Strackee 1983), in
      :math:`(-2\pi, 2\pi)`.
    """
    if "face" not in graph or graph.face is None:
        raise ValueError("the graph has no faces; build it with meshgdl.geometry.mesh_graph")
    face = graph.face.t()
    around = graph.edge_transport[graph.edge_id(face.flatten(), face.roll(-1, dims=1).flatten()).view(face.shape)]
    # summed in float64, so that a float32 graph's sums lose no more than its transports' rounding
    lift = _lift(graph, face)
    return (lift + wrap_angle(around.double().sum(dim=1) - lift)).to(around.dtype)


def _lift(graph: FramedGraph, face: Tensor) -> Tensor:
    from .intrinsic import corner_defects

    kinds = getattr(graph, "connection", None) or "normal"
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)  # a batch holds one string a graph
    pos = graph.pos.double()
    intrinsic = corner_defects(pos, face) if "intrinsic" in kinds else None
    if set(kinds) == {"intrinsic"}:
        return intrinsic
    n = graph.frame[:, 2].double()[face.t()]  # [3, F, 3]
    num = torch.einsum("fa,fa->f", n[0], torch.linalg.cross(n[1], n[2]))
    den = 1 + torch.einsum("kfa,kfa->f", n, n.roll(-1, dims=0))
    solid = 2 * torch.atan2(num, den)
    if intrinsic is None:
        return solid
    per_face = torch.tensor([k == "intrinsic" for k in kinds])[graph.batch[face[:, 0]].cpu()]
    return torch.where(per_face.to(solid.device), intrinsic, solid)


def boundary_turning(graph: FramedGraph) -> Tensor:
    r"""Turning angle of the boundary at every node, measured with the graph's connection: ``[N]``.

    The boundary runs along the faces' edges that have no opposite face, with the surface on its
    left. At a boundary node v between u -> v and v -> w the direction of travel arriving from u
    (:math:`\log_u v` transported to v) turns by
    :math:`\kappa_v = \operatorname{wrap}(\arg\log_v w - \arg\log_u v - a_{uv})` (left turns
    positive): the discrete geodesic curvature, zero at interior nodes and at nodes where the
    boundary passes more than once. With it, discrete Gauss-Bonnet reads
    :math:`\sum_f h_f + \sum_v \kappa_v = 2\pi\chi` (:func:`gauss_bonnet`). The intrinsic
    connection rescales boundary fans to a half-turn, which puts the boundary's turning into the
    face holonomies: there every :math:`\kappa_v` is 0 to rounding.
    """
    from .halfedges import boundary_halfedges, mesh_edges

    face = graph.face.t()
    src, dst = face.flatten(), face.roll(-1, dims=1).flatten()
    on_boundary = torch.from_numpy(boundary_halfedges(mesh_edges(face.cpu().numpy(), graph.num_nodes))).to(face.device)
    u, v = src[on_boundary], dst[on_boundary]
    n = graph.num_nodes
    out = torch.zeros(n, dtype=torch.float64, device=face.device)
    leaving = torch.bincount(u, minlength=n)
    ok = (leaving[v] == 1) & (torch.bincount(v, minlength=n)[v] == 1)
    u, v = u[ok], v[ok]
    if u.numel() == 0:
        return out
    next_of = torch.full((n,), -1, dtype=torch.long, device=face.device)
    next_of[src[on_boundary]] = dst[on_boundary]
    w = next_of[v]
    arrive = graph.edge_logmap[graph.edge_id(v, u)].double()
    leave = graph.edge_logmap[graph.edge_id(w, v)].double()
    transport = graph.edge_transport[graph.edge_id(u, v)].double()
    kappa = torch.atan2(leave[:, 1], leave[:, 0]) - torch.atan2(arrive[:, 1], arrive[:, 0]) - transport
    return out.index_put_((v,), wrap_angle(kappa))


class GaussBonnet(NamedTuple):
    """Both sides of discrete Gauss-Bonnet: ``faces + boundary = 2 pi chi`` (``defect`` = the miss)."""

    faces: float
    boundary: float
    chi: int

    @property
    def defect(self) -> float:
        return self.faces + self.boundary - 2 * math.pi * self.chi


def gauss_bonnet(graph: FramedGraph) -> GaussBonnet:
    r"""Sum of face holonomies, sum of boundary turning angles, Euler characteristic :math:`V - E + F`.

    The identity :math:`\sum_f h_f + \sum_v \kappa_v = 2\pi\chi` holds to rounding for the
    intrinsic connection on every manifold mesh, closed or with boundary; for the normal connection
    when no face folds against its vertex normals (:func:`face_folds`), so that the interpolated
    normals are homotopic to the surface's own.
    """
    chi = graph.num_nodes - graph.num_edges // 2 + graph.face.shape[1]
    return GaussBonnet(float(face_holonomy(graph).double().sum()), float(boundary_turning(graph).sum()), chi)


def face_folds(graph: FramedGraph) -> Tensor:
    r"""How far each face folds against its corners' vertex normals: ``[F]``, the smallest
    :math:`n_f \cdot n_v` over its corners (:math:`n_f` the face's unit normal).

    Negative means folded: the face points against the surface around it (a fold, a flipped
    sliver, a self-overlap), and the vertex normals no longer describe it.
    """
    pos, face = graph.pos.double(), graph.face
    a, b, c = pos[face[0]], pos[face[1]], pos[face[2]]
    normal = torch.linalg.cross(b - a, c - a)
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    corner_normal = graph.frame[:, 2].double()[face]  # [3, F, 3]
    return torch.einsum("fa,kfa->kf", normal, corner_normal).amin(dim=0)
