r"""One rank's share of a partitioned graph: its owned nodes, the halo it reads, and the tables of
exactly the boundary rows it sends and receives."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..graph import FramedGraph

# attributes that cannot be restricted to a part: faces span parts, edge_reverse points at edges
# that another rank holds
_DROPPED = ("face", "edge_reverse")


@dataclass
class GraphPart:
    r"""The part of a graph that rank ``rank`` of ``num_parts`` holds.

    Local node ``k`` is global node ``node_global[k]``: first the ``num_owned`` owned nodes in
    global order, then the halo (the sources of edges whose target is owned, owned by other
    ranks), sorted by owner rank and then by global id. ``graph`` is the restriction of the global
    graph to these nodes and to the edges whose target is owned (in the global edge order), so a
    message-passing layer computes the owned rows exactly as on the whole graph.

    Before each layer, rank ``r`` sends ``x[send_index]``: ``send_counts[q]`` rows to each rank
    ``q`` in rank order (owned nodes that ``q``'s halo holds, in global order), and receives
    ``recv_counts[q]`` rows from each ``q``, which are its halo rows in order.

    Attributes:
        rank (int), num_parts (int): this part and how many there are.
        graph (FramedGraph): the local graph, :math:`N_\text{own} + N_\text{halo}` nodes.
        num_owned (int): :math:`N_\text{own}`.
        node_global (Tensor): :math:`[N_\text{own} + N_\text{halo}]` global node ids.
        edge_global (Tensor, optional): :math:`[E_\text{local}]` global edge ids of the local edges
            (``None`` for a part built without the global graph, :func:`healpix_part`).
        send_index (Tensor): :math:`[S]` local ids (owned) of the rows sent, grouped by destination.
        send_counts (list[int]), recv_counts (list[int]): rows to and from each rank.
    """

    rank: int
    num_parts: int
    graph: FramedGraph
    num_owned: int
    node_global: Tensor
    edge_global: Tensor | None
    send_index: Tensor
    send_counts: list
    recv_counts: list

    @property
    def num_halo(self) -> int:
        return len(self.node_global) - self.num_owned

    @property
    def num_nodes(self) -> int:
        """The rows a model's features have on this rank: the owned nodes (so that pointwise
        layers that check ``graph.num_nodes`` accept the features of a part)."""
        return self.num_owned

    @property
    def owned(self) -> Tensor:
        """Global ids of the owned nodes, :math:`[N_\\text{own}]`: ``x[part.owned]`` is this
        rank's share of global features ``x``."""
        return self.node_global[:self.num_owned]

    def to(self, device) -> "GraphPart":
        """The part with its graph and tables on ``device`` (NCCL exchanges GPU tensors)."""
        edge_global = None if self.edge_global is None else self.edge_global.to(device)
        return GraphPart(self.rank, self.num_parts, self.graph.to(device), self.num_owned,
                         self.node_global.to(device), edge_global, self.send_index.to(device),
                         self.send_counts, self.recv_counts)

    def __repr__(self) -> str:
        return (f"GraphPart(rank={self.rank}/{self.num_parts}, owned={self.num_owned:,}, halo={self.num_halo:,}, "
                f"edges={self.graph.num_edges:,}, send={sum(self.send_counts):,})")


def check_assignment(assignment, num_nodes: int, num_parts: int | None = None) -> tuple[Tensor, int]:
    """``assignment`` as a long tensor ``[N]`` with values in ``0..P-1``, every part non-empty;
    returns it and ``P``. Raises ``ValueError`` naming the problem otherwise."""
    a = torch.as_tensor(assignment)
    if a.dtype.is_floating_point or a.dtype == torch.bool or a.is_complex():
        raise TypeError(f"the assignment must hold integer part ids, got {a.dtype}")
    a = a.long().cpu()
    if a.shape != (num_nodes,):
        raise ValueError(f"the assignment must have one part id per node, shape [{num_nodes}], got {list(a.shape)}")
    if num_nodes and int(a.min()) < 0:
        raise ValueError(f"part ids must be >= 0, got {int(a.min())} at node {int(a.argmin())}")
    p = int(a.max()) + 1 if num_parts is None else int(num_parts)
    if num_nodes and int(a.max()) >= p:
        raise ValueError(f"part ids must be below num_parts={p}, got {int(a.max())} at node {int(a.argmax())}")
    sizes = torch.bincount(a, minlength=p)
    if bool((sizes == 0).any()):
        empty = (sizes == 0).nonzero().flatten().tolist()
        raise ValueError(f"parts {empty[:8]} own no nodes; use fewer parts or another assignment, since a rank "
                         "without nodes has nothing to compute")
    return a, p


def build_part(graph: FramedGraph, assignment, rank: int, num_parts: int | None = None) -> GraphPart:
    r"""Cut out the part of ``rank``: its owned nodes, halo, local graph and exchange tables.

    ``graph`` needs every edge into and out of the nodes of ``rank`` (the whole graph does).
    Node attributes (those of :math:`N` rows) are gathered, edge attributes (names with ``edge``,
    :math:`E` rows) restricted to the local edges, other attributes copied; ``face`` and
    ``edge_reverse`` are dropped, since they reach into other parts.

    Args:
        graph (FramedGraph): the global graph.
        assignment: :math:`[N]` integer part id of every node (see :func:`~meshgdl.distributed.assign_parts`).
        rank (int): the part to build.
        num_parts (int, optional): :math:`P` (default: ``max(assignment) + 1``)
    """
    a, p = check_assignment(assignment, graph.num_nodes, num_parts)
    if not 0 <= rank < p:
        raise ValueError(f"rank must be in 0..{p - 1}, got {rank}")
    return cut_part(graph, a, rank, p)


def cut_part(graph: FramedGraph, a: Tensor, rank: int, p: int) -> GraphPart:
    """:func:`build_part` without the checks, for a graph that holds only some parts' nodes."""
    n = graph.num_nodes
    src, dst = graph.edge_index.cpu()
    owned = (a == rank).nonzero().flatten()
    edge_global = (a[dst] == rank).nonzero().flatten()
    sources = src[edge_global]
    halo = torch.unique(sources[a[sources] != rank])
    halo = halo[torch.argsort(a[halo] * n + halo)]  # by owner, then global id: the order they arrive in
    node_global = torch.cat([owned, halo])
    local = torch.full((n,), -1, dtype=torch.long)
    local[node_global] = torch.arange(len(node_global))

    # rows to send: owned sources of edges whose target another rank owns, once per (rank, node)
    out = ((a[src] == rank) & (a[dst] != rank)).nonzero().flatten()
    pairs = torch.unique(a[dst[out]] * n + src[out])  # sorted by destination rank, then global id
    send_index = local[pairs % n]
    send_counts = torch.bincount(pairs // n, minlength=p).tolist()
    recv_counts = torch.bincount(a[halo], minlength=p).tolist()

    sub = FramedGraph()
    num_edges = graph.num_edges
    for key, value in graph.items():
        if key in _DROPPED:
            continue
        if key == "edge_index":
            sub[key] = local[graph.edge_index.cpu()[:, edge_global]].to(value.device)
        elif isinstance(value, Tensor) and value.dim() and "edge" in key and value.shape[0] == num_edges:
            sub[key] = value[edge_global.to(value.device)]
        elif isinstance(value, Tensor) and value.dim() and value.shape[0] == n:
            sub[key] = value[node_global.to(value.device)]
        elif key != "num_nodes":
            sub[key] = value
    sub.num_nodes = len(node_global)
    return GraphPart(rank, p, sub, len(owned), node_global, edge_global, send_index, send_counts, recv_counts)


def partition_graph(graph: FramedGraph, num_parts: int | None = None, *, assignment=None,
                    method: str | None = None, **kwargs) -> list[GraphPart]:
    """Every part of ``graph``: ``[build_part(graph, assignment, r) for r in range(P)]``.

    Give ``num_parts`` (the assignment is then :func:`~meshgdl.distributed.assign_parts`
    ``(graph, num_parts, method, **kwargs)``) or your own ``assignment``. For one rank on a large
    graph, :func:`build_part` builds only its own part.
    """
    if assignment is None:
        if num_parts is None:
            raise ValueError("give num_parts (to split the graph) or an assignment (a part id per node)")
        from .assign import assign_parts

        assignment = assign_parts(graph, num_parts, method=method, **kwargs)
    a, p = check_assignment(assignment, graph.num_nodes, num_parts)
    return [build_part(graph, a, r, p) for r in range(p)]
