"""The models compared in ``cortex_parcellation.py``, each built to a common parameter budget.

Every model maps per-vertex inputs ``x [N, C_in]`` (and a graph, for the graph models) to class
logits ``[N, C]``. The width of each is the one whose parameter count comes closest to the budget.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from meshgdl.nn import GlobalInvariantPool
from meshgdl.nn.models import CoarseningHierarchy as Hierarchy  # noqa: F401 (the examples build it by this name)
from meshgdl.nn.models import GemUNet

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
    (PyG layers such as FeaStConv) instead of the framed graph. ``readout="max"`` decodes the
    largest value of each channel over the nodes (one output a graph) instead of every node.
    Features ``[B, N, C]`` on one shared graph give ``[B, N, classes]`` or ``[B, classes]``.
    """

    def __init__(self, in_channels: int, width: int, num_classes: int, conv, layers: int = 4,
                 edge_index_only: bool = False, readout: str | None = None):
        super().__init__()
        self.encode = nn.Linear(in_channels, width)
        self.convs = nn.ModuleList(conv(width) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(layers))
        self.decode = nn.Linear(width, num_classes)
        self.edge_index_only, self.readout = edge_index_only, readout

    def forward(self, x, graph):
        h = self.encode(x)
        arg = graph.edge_index if self.edge_index_only else graph
        if self.edge_index_only and h.dim() == 3:
            # PyG layers take one graph: the B samples become B disjoint copies of it
            arg = torch.cat([arg + k * h.shape[1] for k in range(h.shape[0])], 1)
            h = h.flatten(0, 1)
        for conv, norm in zip(self.convs, self.norms):
            h = h + torch.relu(norm(conv(h, arg)))
        h = h.reshape(x.shape[:-1] + h.shape[-1:])
        return self.decode(h.amax(-2) if self.readout == "max" else h)


def _feast(in_channels, width, num_classes, readout=None):
    from torch_geometric.nn import FeaStConv

    return ScalarConvNet(in_channels, width, num_classes, lambda w: FeaStConv(w, w, heads=4),
                         edge_index_only=True, readout=readout)


def _iso(in_channels, width, num_classes, readout=None):
    from meshgdl.nn import IsoConv

    return ScalarConvNet(in_channels, width, num_classes, lambda w: IsoConv(w, w), readout=readout)


MODELS: dict[str, Spec] = {
    "mlp": Spec("MLP (intrinsic)", "none", False, lambda i, w, c: MLP(i, w, c)),
    "feast_xyz": Spec("FeaStConv (xyz + intrinsic)", "mesh", True, _feast),
    "feast": Spec("FeaStConv (intrinsic)", "mesh", False, _feast),
    "iso": Spec("IsoConv (mesh)", "mesh", False, _iso),
}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_model(name, num_classes: int, budget: int, in_channels: int | None = None) -> nn.Module:
    """The model ``name`` (or a :class:`Spec`) at the width whose parameter count is closest to
    ``budget``; the inputs are the intrinsic features (and xyz for the models that use it) unless
    ``in_channels`` is given."""
    spec = MODELS[name] if isinstance(name, str) else name
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


class Invariants(GlobalInvariantPool):
    """Gauge-invariant read-out of every node: the scalars and the norm of every frequency-k > 0 pair."""

    def __init__(self, field_type):
        super().__init__(field_type)
        self.dim = self.out_channels

    def forward(self, x):
        return self.invariants(x)


MODELS.update({
    "gem": Spec("GemConv + pooling (mesh)", "mesh", False, lambda i, w, c: GemUNet(i, w, c)),
    "iso_points": Spec("IsoConv (point cloud)", "points", False, _iso),
    "gem_points": Spec("GemConv + pooling (point cloud)", "points", False, lambda i, w, c: GemUNet(i, w, c)),
})
