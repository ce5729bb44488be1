"""The models compared in ``cortex_parcellation.py``, each built to a common parameter budget.

Every model maps per-vertex inputs ``x [N, C_in]`` (and a graph, for the graph models) to class
logits ``[N, C]``. The width of each is the one whose parameter count comes closest to the budget.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

NUM_INTRINSIC = 3


@dataclass
class Spec:
    label: str
    domain: str  # "mesh", "points" or "none": which graph the model reads
    uses_xyz: bool
    make: Callable[[int, int, int], nn.Module]  # (in_channels, width, num_classes) -> module


class MLP(nn.Module):
    """Per-vertex MLP on the intrinsic inputs: no neighbourhood at all."""

    def __init__(self, in_channels: int, width: int, num_classes: int, layers: int = 4):
        super().__init__()
        dims = [in_channels] + [width] * (layers - 1)
        blocks = []
        for a, b in zip(dims[:-1], dims[1:]):
            blocks += [nn.Linear(a, b), nn.LayerNorm(b), nn.ReLU()]
        self.net = nn.Sequential(*blocks, nn.Linear(width, num_classes))

    def forward(self, x, graph=None):
        return self.net(x)


class ScalarConvNet(nn.Module):
    """Encoder, residual blocks of a scalar graph convolution, decoder.

    ``conv(width)`` builds one convolution; ``edge_index_only`` feeds it ``graph.edge_index``
    (PyG layers such as FeaStConv) instead of the framed graph.
    """

    def __init__(self, in_channels: int, width: int, num_classes: int, conv, layers: int = 4,
                 edge_index_only: bool = False):
        super().__init__()
        self.encode = nn.Linear(in_channels, width)
        self.convs = nn.ModuleList(conv(width) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(layers))
        self.decode = nn.Linear(width, num_classes)
        self.edge_index_only = edge_index_only

    def forward(self, x, graph):
        h = self.encode(x)
        arg = graph.edge_index if self.edge_index_only else graph
        for conv, norm in zip(self.convs, self.norms):
            h = h + torch.relu(norm(conv(h, arg)))
        return self.decode(h)


def _feast(in_channels, width, num_classes):
    from torch_geometric.nn import FeaStConv

    return ScalarConvNet(in_channels, width, num_classes, lambda w: FeaStConv(w, w, heads=4),
                         edge_index_only=True)


def _iso(in_channels, width, num_classes):
    from meshgdl.nn import IsoConv

    return ScalarConvNet(in_channels, width, num_classes, lambda w: IsoConv(w, w))


MODELS: dict[str, Spec] = {
    "mlp": Spec("MLP (intrinsic)", "none", False, lambda i, w, c: MLP(i, w, c)),
    "feast_xyz": Spec("FeaStConv (xyz + intrinsic)", "mesh", True, _feast),
    "feast": Spec("FeaStConv (intrinsic)", "mesh", False, _feast),
    "iso": Spec("IsoConv (mesh)", "mesh", False, _iso),
}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_model(name: str, num_classes: int, budget: int, in_channels: int | None = None) -> nn.Module:
    """The model ``name`` at the width whose parameter count is closest to ``budget``; the inputs are
    the intrinsic features (and xyz for the models that use it) unless ``in_channels`` is given."""
    spec = MODELS[name]
    if in_channels is None:
        in_channels = NUM_INTRINSIC + (3 if spec.uses_xyz else 0)
    best = None
    for width in range(2, 257):
        state = torch.random.get_rng_state()
        model = spec.make(in_channels, width, num_classes)
        torch.random.set_rng_state(state)  # so that the seed fixes the final model's weights
        n = count_parameters(model)
        if best is None or abs(n - budget) < abs(best[0] - budget):
            best = (n, width)
        if n > budget:
            break
    model = spec.make(in_channels, best[1], num_classes)
    model.domain, model.uses_xyz, model.width = spec.domain, spec.uses_xyz, best[1]
    model.pooled = isinstance(model, GemUNet)
    return model


class Invariants(nn.Module):
    """Gauge-invariant read-out: the scalars and the norm of every frequency-k > 0 pair."""

    def __init__(self, field_type):
        super().__init__()
        self.num_scalars = field_type.multiplicities[0]
        self.dim = self.num_scalars + (field_type.dim - self.num_scalars) // 2

    def forward(self, x):
        pairs = x[:, self.num_scalars:].unflatten(-1, (-1, 2))
        return torch.cat([x[:, :self.num_scalars], (pairs.square().sum(-1) + 1e-12).sqrt()], -1)


@dataclass
class Hierarchy:
    """A framed graph and its coarsenings (:func:`meshgdl.nn.coarsen`), finest first."""

    graph: object
    levels: list

    @classmethod
    def build(cls, graph, sizes=(512, 128, 32)) -> "Hierarchy":
        """Coarsenings to about ``sizes`` nodes each, skipping sizes not below the graph's.

        Fixed node counts (not fixed ratios) put the coarse levels of a finer and a coarser mesh of
        one surface at the same spatial scale, so a model trained on one sees the same receptive
        fields on the other.
        """
        from meshgdl.nn import coarsen

        levels, g = [], graph
        for size in sizes:
            if size >= g.num_nodes:
                continue
            levels.append(coarsen(g, size / g.num_nodes))
            g = levels[-1].coarse
        return cls(graph, levels)


class GemUNet(nn.Module):
    """GemConv U-Net: convolutions on every level of a coarsening hierarchy, so that the receptive
    field reaches the scale of a lobe, and back up with skip connections.

    Down: GemConv -> GaugeLayerNorm -> NormNonlinearity at each level, then TransportPool to the
    centres (features are transported into the centre's frame before averaging). Up: transport
    the coarse features back to the cluster members, add the skip, EquivariantLinear,
    nonlinearity. Read-out on gauge invariants (scalars and pair norms), so the logits are
    gauge invariant. Without a hierarchy (``depth = 0``) it is a plain GemConv residual network.
    """

    def __init__(self, in_channels: int, width: int, num_classes: int, depth: int = 3, max_frequency: int = 2):
        super().__init__()
        from meshgdl.nn import EquivariantLinear, FieldType, GaugeLayerNorm, GemConv, NormNonlinearity, TransportPool

        hidden = FieldType([width] * (max_frequency + 1))
        self.depth = depth
        self.encode = GemConv(FieldType.scalars(in_channels), hidden)
        block = lambda: nn.ModuleList([GemConv(hidden, hidden), GaugeLayerNorm(hidden), NormNonlinearity(hidden)])
        self.down = nn.ModuleList(block() for _ in range(depth + 1))
        self.up = nn.ModuleList(nn.ModuleList([EquivariantLinear(hidden, hidden), NormNonlinearity(hidden)])
                                for _ in range(depth))
        self.pool = TransportPool(hidden)
        self.invariants = Invariants(hidden)
        self.decode = nn.Linear(self.invariants.dim, num_classes)

    def forward(self, x, hierarchy: Hierarchy):
        graphs = [hierarchy.graph] + [c.coarse for c in hierarchy.levels][:self.depth]
        depth = len(graphs) - 1  # a small graph may have fewer levels
        h = self.encode(x, graphs[0])
        skips = []
        for level, (conv, norm, act) in enumerate(self.down[:depth + 1]):
            h = h + act(norm(conv(h, graphs[level])))
            if level < depth:
                skips.append(h)
                c = hierarchy.levels[level]
                h = self.pool(h, c.pool)[c.centres]
        for level in reversed(range(depth)):
            c = hierarchy.levels[level]
            fine = h.new_zeros(skips[level].shape)
            fine[c.centres] = h
            linear, act = self.up[level]
            h = skips[level] + act(linear(self.pool(fine, c.unpool) + skips[level]))
        return self.decode(self.invariants(h))


MODELS.update({
    "gem": Spec("GemConv + pooling (mesh)", "mesh", False, lambda i, w, c: GemUNet(i, w, c)),
    "iso_points": Spec("IsoConv (point cloud)", "points", False, _iso),
    "gem_points": Spec("GemConv + pooling (point cloud)", "points", False, lambda i, w, c: GemUNet(i, w, c)),
})
