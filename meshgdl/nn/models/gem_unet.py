r"""A GemConv U-Net over a coarsening hierarchy, for per-node (and per-graph) prediction."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ...field_type import FieldType
from ..gauge.equivariant_linear import EquivariantLinear
from ..gauge.gauge_layer_norm import GaugeLayerNorm
from ..gauge.gem_conv import GemConv
from ..gauge.norm_nonlinearity import NormNonlinearity
from ..pool.global_invariant_pool import GlobalInvariantPool
from ..pool.transport_pool import TransportPool


@dataclass
class CoarseningHierarchy:
    """A framed graph and its coarsenings (:func:`~meshgdl.nn.coarsen`), finest first.

    Attributes:
        graph: the finest graph (a FramedGraph).
        levels (list): one :class:`~meshgdl.nn.pool.coarsen.Coarsening` a level; ``levels[l].coarse``
            is the graph of level ``l + 1``.
    """

    graph: object
    levels: list

    @classmethod
    def build(cls, graph, sizes=(512, 128, 32)) -> "CoarseningHierarchy":
        """Coarsenings to about ``sizes`` nodes each, skipping sizes not below the graph's.

        Fixed node counts (not fixed ratios) put the coarse levels of a finer and a coarser mesh of
        one surface at the same spatial scale, so a model trained on one sees the same receptive
        fields on the other.
        """
        from ..pool.coarsen import coarsen

        levels, g = [], graph
        for size in sizes:
            if size >= g.num_nodes:
                continue
            levels.append(coarsen(g, size / g.num_nodes))
            g = levels[-1].coarse
        return cls(graph, levels)


class GemUNet(torch.nn.Module):
    r"""A GemConv U-Net: convolutions on every level of a :class:`CoarseningHierarchy`, so that the
    receptive field grows to the coarsest level's scale, and back up with skip connections.

    Down, at every level :math:`l \le D`:

    .. math::
        h \leftarrow h + \sigma\big(\mathrm{LN}(\mathrm{GemConv}_l(h))\big),

    then :class:`~meshgdl.nn.TransportPool` to the cluster centres (frequency-:math:`k` features
    are transported into the centre's frame before they are averaged). Up: the coarse features are
    transported back to the cluster members, and
    :math:`h \leftarrow s_l + \sigma(\mathrm{Lin}(\mathrm{unpool}(h) + s_l))` with the skip
    :math:`s_l`. The read-out is linear on the gauge invariants (scalars and the norm of every
    frequency-:math:`k > 0` pair), so the output does not change under gauge transformations,
    node permutations or rotations of the embedding. The graph task reduces the invariants
    :math:`u_c` of the coarsest level's nodes :math:`c` first, by the mean or by the largest value
    of each channel, :math:`\max_c u_c`, which keeps a signal seen by a few nodes of many (a digit
    on a mesh) that the mean dilutes. A hierarchy with fewer levels than ``depth`` uses the levels
    it has; without levels the model is a residual GemConv network.

    Args:
        in_channels (int): input scalars.
        width (int): copies of each frequency :math:`0..K` of the hidden field type.
        out_channels (int): output scalars (class logits or values).
        depth (int): pooling levels used, :math:`D` (default: ``3``)
        max_frequency (int): :math:`K`, the highest SO(2) frequency of the hidden features (default: ``2``)
        task (str): ``"node"`` (one output a node) or ``"graph"`` (the invariants averaged over the
            coarsest level, one output a graph; the up path is not built) (default: ``"node"``)
        readout (str): how the graph task reduces the invariants over the coarsest level's nodes,
            ``"mean"`` or ``"max"``; the node task takes only ``"mean"`` (no reduction)
            (default: ``"mean"``)

    Shapes:
        - input: ``x`` :math:`[N, C_\text{in}]` or :math:`[B, N, C_\text{in}]` (:math:`B` samples on
          one shared graph), ``hierarchy`` a :class:`CoarseningHierarchy` of one graph with
          :math:`N` nodes (or the graph itself, coarsened by :meth:`CoarseningHierarchy.build` on
          every call: build the hierarchy once for training)
        - output: :math:`[N, C_\text{out}]` (node task) or :math:`[1, C_\text{out}]` (graph task);
          :math:`[B, N, C_\text{out}]` or :math:`[B, C_\text{out}]` for batched input
    """

    def __init__(self, in_channels: int, width: int, out_channels: int, depth: int = 3, max_frequency: int = 2,
                 task: str = "node", readout: str = "mean"):
        super().__init__()
        if task not in ("node", "graph"):
            raise ValueError(f"task must be 'node' or 'graph', got {task!r}")
        if readout not in ("mean", "max"):
            raise ValueError(f"readout must be 'mean' or 'max', got {readout!r}")
        if task == "node" and readout != "mean":
            raise ValueError(f"readout={readout!r} reduces over nodes, which only the graph task does; "
                             "pass task='graph' or leave readout='mean'")
        hidden = FieldType([width] * (max_frequency + 1))
        self.depth, self.task, self.readout = depth, task, readout
        self.encode = GemConv(FieldType.scalars(in_channels), hidden)
        block = lambda: torch.nn.ModuleList([GemConv(hidden, hidden), GaugeLayerNorm(hidden), NormNonlinearity(hidden)])
        self.down = torch.nn.ModuleList(block() for _ in range(depth + 1))
        ups = depth if task == "node" else 0
        self.up = torch.nn.ModuleList(torch.nn.ModuleList([EquivariantLinear(hidden, hidden), NormNonlinearity(hidden)])
                                      for _ in range(ups))
        self.pool = TransportPool(hidden)
        self.invariants = GlobalInvariantPool(hidden)
        self.decode = torch.nn.Linear(self.invariants.out_channels, out_channels)

    def forward(self, x: Tensor, hierarchy) -> Tensor:
        if not isinstance(hierarchy, CoarseningHierarchy):
            hierarchy = CoarseningHierarchy.build(hierarchy)
        graphs = [hierarchy.graph] + [c.coarse for c in hierarchy.levels][:self.depth]
        depth = len(graphs) - 1  # a small graph may have fewer levels
        h = self.encode(x, graphs[0])
        skips = []
        for level, (conv, norm, act) in enumerate(self.down[:depth + 1]):
            h = h + _pointwise(lambda t: act(norm(t)), conv(h, graphs[level]))
            if level < depth:
                skips.append(h)
                c = hierarchy.levels[level]
                h = self.pool(h, c.pool)[..., c.centres, :]
        if self.task == "graph":
            invariants = _pointwise(self.invariants.invariants, h)
            reduce = invariants.amax if self.readout == "max" else invariants.mean
            return self.decode(reduce(-2, keepdim=x.dim() == 2))
        for level in reversed(range(depth)):
            c = hierarchy.levels[level]
            fine = h.new_zeros(skips[level].shape)
            fine[..., c.centres, :] = h
            linear, act = self.up[level]
            h = skips[level] + _pointwise(lambda t: act(linear(t)), self.pool(fine, c.unpool) + skips[level])
        return self.decode(_pointwise(self.invariants.invariants, h))


def _pointwise(fn, h: Tensor) -> Tensor:
    """A per-node function written for ``[N, C]`` applied to ``[N, C]`` or ``[B, N, C]``."""
    return fn(h) if h.dim() == 2 else fn(h.flatten(0, 1)).unflatten(0, h.shape[:2])
