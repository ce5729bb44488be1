r"""Mesh and point-cloud coarsening by farthest point sampling, as framed graphs.

A coarsening is three framed graphs and the centres:

* ``coarse``: the centres (a subset of the fine nodes, keeping their frames) joined wherever
  their clusters touch in the fine graph, with log maps and transports from
  :mod:`meshgdl.geometry.tangent` (Euclidean lengths);
* ``pool``: on the fine nodes, one edge from every node to its centre (a self loop at centres),
  carrying the transport into the centre's frame, composed from the fine transports along the
  shortest path inside the cluster: pooling is message passing along it;
* ``unpool``: the same edges reversed;
* ``centres``: ``[M]`` fine ids, so that coarse node ``k`` is fine node ``centres[k]``.

Because the coarse frames are fine frames and all three are ordinary framed graphs, gauge
transformations, permutations and rotations act on them as on any graph.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from ...geometry.tangent import tangent_logmap, transport_angle
from ...graph import FramedGraph


class Coarsening(NamedTuple):
    coarse: FramedGraph
    pool: FramedGraph
    unpool: FramedGraph
    centres: Tensor
    cluster: Tensor          # [N]: the coarse node of every fine node


def farthest_point_sampling(pos: Tensor, num: int) -> Tensor:
    """``num`` node ids, each the farthest (Euclidean) from those chosen before; the first is the
    node farthest from the centroid. Depends on positions only, so it rotates with the input."""
    first = int((pos - pos.mean(0)).norm(dim=-1).argmax())
    chosen = [first]
    dist = (pos - pos[first]).norm(dim=-1)
    for _ in range(num - 1):
        nxt = int(dist.argmax())
        chosen.append(nxt)
        dist = torch.minimum(dist, (pos - pos[nxt]).norm(dim=-1))
    return torch.tensor(chosen, dtype=torch.long, device=pos.device)


def nearest_centre(graph: FramedGraph, centres: Tensor) -> Tensor:
    """``[N]``: the coarse id of the centre nearest to each node along the graph (edge lengths
    ``|edge_logmap|``, multi-source Dijkstra). Unlike the Euclidean nearest centre, this never
    joins a node to a centre across a thin part of the surface."""
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    n = graph.num_nodes
    j, i = graph.edge_index.cpu().numpy()
    length = graph.edge_logmap.detach().double().norm(dim=-1).cpu().numpy()
    adj = coo_matrix((length, (j, i)), shape=(n, n)).tocsr()
    _, _, sources = dijkstra(adj, directed=False, indices=centres.cpu().numpy(), min_only=True,
                                return_predecessors=True)
    if (sources < 0).any():
        raise ValueError(f"{int((sources < 0).sum())} nodes cannot reach any centre; coarsen each connected "
                         "component separately or raise the ratio")
    coarse_id = np.full(n, -1)
    coarse_id[centres.cpu().numpy()] = np.arange(len(centres))
    return torch.as_tensor(coarse_id[sources], dtype=torch.long, device=graph.pos.device)


def transport_to_centre(graph: FramedGraph, centres: Tensor, cluster: Tensor) -> Tensor:
    """``[N]``: the transport angle from each node to its centre, composed along the shortest path
    inside its cluster (``a = a_{v -> u} + a_{u -> ...} + ...``, fine edges only).

    Composing fine transports follows the surface's own connection and stays well conditioned:
    the direct rotation between a node's normal and a centre's normal is ill-conditioned when they
    are nearly opposite (a thin part of the surface), and such pairs occur on real meshes.
    """
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    n = graph.num_nodes
    j, i = graph.edge_index
    same = (cluster[j] == cluster[i]).cpu().numpy()
    jn, in_ = j.cpu().numpy()[same], i.cpu().numpy()[same]
    length = graph.edge_logmap.detach().double().norm(dim=-1).cpu().numpy()[same]
    adj = coo_matrix((length, (jn, in_)), shape=(n, n)).tocsr()
    dist, pred, _ = dijkstra(adj, directed=False, indices=centres.cpu().numpy(), min_only=True,
                             return_predecessors=True)
    if not np.isfinite(dist).all():
        raise ValueError(f"{int((~np.isfinite(dist)).sum())} nodes cannot reach their centre inside their cluster; "
                         "clusters must be connected in the graph")
    device = graph.edge_transport.device
    ptr = torch.arange(n, device=device)
    step = torch.zeros(n, dtype=graph.edge_transport.dtype, device=device)
    moving = torch.as_tensor(pred >= 0, device=device)
    v = ptr[moving]
    u = torch.as_tensor(pred, dtype=torch.long, device=device)[moving]
    # kNN graphs may hold only one direction of a pair: then go against the reverse (a_uv = -a_vu)
    forward, backward = graph.edge_id(v, u, missing=-1), graph.edge_id(u, v, missing=-1)
    step[v] = torch.where(forward >= 0, graph.edge_transport[forward.clamp_min(0)],
                          -graph.edge_transport[backward.clamp_min(0)])
    ptr[v] = u
    # pointer jumping: after round k, step[v] sums the transports over 2^k edges towards the centre
    while bool((ptr != ptr[ptr]).any()):
        step = step + step[ptr]
        ptr = ptr[ptr]
    return step + step[ptr]


def coarsen(graph: FramedGraph, ratio: float = 0.25, centres: Tensor | None = None,
            cluster: Tensor | None = None) -> Coarsening:
    """Coarsen ``graph`` to ``ceil(ratio * N)`` farthest-point centres (or the given ``centres``);
    each node joins the centre nearest along the graph (:func:`nearest_centre`), or coarse node
    ``cluster[j]`` when given. Returns a
    :class:`Coarsening`.

    On symmetric domains (a regular grid, an icosphere) farthest points and nearest centres tie,
    and rounding decides; pass ``centres`` and ``cluster`` of an earlier call to reuse a
    hierarchy exactly (a rotated copy of the domain, a dataset of equal meshes).
    """
    n = graph.num_nodes
    if centres is None:
        if not 0 < ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}")
        centres = farthest_point_sampling(graph.pos, max(1, math.ceil(ratio * n)))
    centres = torch.as_tensor(centres, dtype=torch.long, device=graph.pos.device)
    pos, frame = graph.pos, graph.frame
    if cluster is None:
        cluster = nearest_centre(graph, centres)
    cluster = torch.as_tensor(cluster, dtype=torch.long, device=pos.device)
    members = torch.arange(n, device=pos.device)
    to_centre = torch.stack([members, centres[cluster]])
    loop = to_centre[0] == to_centre[1]
    logmap = pos.new_zeros(n, 2)
    logmap[~loop] = tangent_logmap(pos, frame, to_centre[:, ~loop])
    to_centre_transport = transport_to_centre(graph, centres, cluster)
    pool = FramedGraph(pos=pos, frame=frame, edge_index=to_centre, edge_logmap=logmap,
                       edge_transport=to_centre_transport)
    back = to_centre.flip(0)
    unlogmap = pos.new_zeros(n, 2)
    unlogmap[~loop] = tangent_logmap(pos, frame, back[:, ~loop])
    unpool = FramedGraph(pos=pos, frame=frame, edge_index=back, edge_logmap=unlogmap,
                         edge_transport=-to_centre_transport)
    src, dst = cluster[graph.edge_index[0]], cluster[graph.edge_index[1]]
    keep = src != dst
    pairs = torch.unique(torch.stack([src[keep], dst[keep]]), dim=1)
    cpos, cframe = pos[centres], frame[centres]
    if pairs.shape[1] == 0:
        raise ValueError("the coarse graph has no edges (one cluster?); use a larger ratio")
    coarse = FramedGraph(pos=cpos, frame=cframe, edge_index=pairs, edge_logmap=tangent_logmap(cpos, cframe, pairs),
                         edge_transport=transport_angle(cframe[pairs[0]], cframe[pairs[1]]))
    return Coarsening(coarse, pool, unpool, centres, cluster)
