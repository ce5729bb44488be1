"""Holonomy of closed loops of edges: the gauge-invariant curvature of a framed graph."""
from __future__ import annotations

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
    """Holonomy of every face of a mesh graph, following the face's orientation: ``[F]``."""
    if "face" not in graph or graph.face is None:
        raise ValueError("the graph has no faces; build it with meshgdl.geometry.mesh_graph")
    return loop_holonomy(graph, graph.face.t())
