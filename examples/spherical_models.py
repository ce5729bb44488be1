"""The models compared in ``spherical_images.py``, each built to a parameter budget.

Every model maps features ``x [B, N, C_in]`` on one nested HEALPix graph (with its pooling levels from
:func:`meshgdl.geometry.healpix_levels`) to per-pixel logits ``[B, N, C]`` (segmentation) or
per-map logits ``[B, C]`` (classification).

* ``gem``: GemConv U-Net, features of SO(2) frequencies 0..2, transport pooling along the nested
  hierarchy (:class:`meshgdl.nn.HealpixPool`), read-out on gauge invariants: gauge equivariant.
* ``iso``: the same U-Net with IsoConv on scalars (isotropic kernels).
* ``cheb``: the same U-Net with DeepSphere's layer (Defferrard et al. 2020): PyG ``ChebConv``
  (order ``K``) on the combinatorial Laplacian of the HEALPix graph with Gaussian edge weights.
* ``swin``: :class:`meshgdl.nn.HealSwinUNet` / :class:`meshgdl.nn.HealSwin` (not equivariant).
"""
from __future__ import annotations

import torch
from torch import nn

from cortex_models import Invariants, count_parameters  # noqa: F401 (re-exported for the example)

CHEB_ORDER = 3


def pointwise(module, h):
    """Apply a per-node module written for ``[N, C]`` to ``[..., N, C]``."""
    return module(h.flatten(0, -2)).unflatten(0, h.shape[:-1])


def add_deepsphere_weights(graph):
    r"""DeepSphere's graph on ``graph``'s edges: :math:`w_{ij} = \exp(-d_{ij}^2 / \bar{d^2})` with
    the geodesic edge length :math:`d_{ij}` and its mean square :math:`\bar{d^2}`, and the largest
    eigenvalue of :math:`L = D - W` (``graph.cheb_lambda_max``), which ChebConv rescales by."""
    import numpy as np
    import scipy.sparse as sp
    from scipy.sparse.linalg import eigsh

    d2 = graph.edge_logmap.double().norm(dim=-1).square()
    w = torch.exp(-d2 / d2.mean())
    n = graph.num_nodes
    ei = graph.edge_index.numpy()
    adj = sp.coo_matrix((w.numpy(), (ei[1], ei[0])), shape=(n, n)).tocsr()
    adj = (adj + adj.T) / 2  # the HEALPix graph is symmetric; this only removes round-off
    lap = sp.diags(np.asarray(adj.sum(1)).ravel()) - adj
    graph.cheb_weight = w.float()
    graph.cheb_lambda_max = float(eigsh(lap, k=1, which="LA", return_eigenvectors=False)[0]) if n > 2 else 2.0
    return graph


class ChebLayer(nn.Module):
    """PyG ``ChebConv`` reading DeepSphere's weights from the graph (:func:`add_deepsphere_weights`)."""

    def __init__(self, in_channels: int, out_channels: int, order: int = CHEB_ORDER):
        super().__init__()
        from torch_geometric.nn import ChebConv

        self.conv = ChebConv(in_channels, out_channels, K=order, normalization=None)

    def forward(self, x, graph):
        lam = torch.tensor(graph.cheb_lambda_max, dtype=x.dtype)
        return self.conv(x, graph.edge_index, graph.cheb_weight.to(x.dtype), lambda_max=lam)


class HealpixUNet(nn.Module):
    """A U-Net over the nested HEALPix levels with one convolution family (``gem``, ``iso``, ``cheb``).

    Down: ``h + act(norm(conv(h)))`` at each level, then pooling to the parents (frequency-k
    features transported into the parent's frame first). Up: unpool, add the skip, a pointwise
    linear map and the nonlinearity. Segmentation reads every pixel out; classification takes the
    largest value of each invariant over the coarsest level (a max over the sphere: rotation invariant).
    """

    def __init__(self, layer: str, in_channels: int, width: int, num_classes: int, depth: int = 3,
                 task: str = "segmentation", max_frequency: int = 2):
        super().__init__()
        from meshgdl.nn import (EquivariantLinear, FieldType, GaugeLayerNorm, GemConv, HealpixPool, HealpixUnpool,
                                IsoConv, NormNonlinearity)

        self.depth, self.task = depth, task
        if layer == "gem":
            hidden = FieldType([width] * (max_frequency + 1))
            conv = lambda a, b: GemConv(a, b)
            first = GemConv(FieldType.scalars(in_channels), hidden)
            norm, act, linear = (lambda: GaugeLayerNorm(hidden), lambda: NormNonlinearity(hidden),
                                 lambda: EquivariantLinear(hidden, hidden))
            self.invariants = Invariants(hidden)
            out_dim = self.invariants.dim
        else:
            hidden = FieldType.scalars(width)
            conv = (lambda a, b: IsoConv(a.dim, b.dim)) if layer == "iso" else (lambda a, b: ChebLayer(a.dim, b.dim))
            first = conv(FieldType.scalars(in_channels), hidden)
            norm, act, linear = lambda: nn.LayerNorm(width), lambda: nn.ReLU(), lambda: nn.Linear(width, width)
            self.invariants, out_dim = nn.Identity(), width
        self.encode = first
        self.convs = nn.ModuleList(conv(hidden, hidden) for _ in range(depth + 1))
        self.norms = nn.ModuleList(norm() for _ in range(depth + 1))
        self.acts = nn.ModuleList(act() for _ in range(depth + 1))
        ups = depth if task == "segmentation" else 0
        self.ups = nn.ModuleList(nn.ModuleList([linear(), act()]) for _ in range(ups))
        self.pool, self.unpool = HealpixPool(hidden), HealpixUnpool(hidden)
        self.decode = nn.Linear(out_dim, num_classes)

    def forward(self, x, levels):
        h = self.encode(x, levels[0])
        skips = []
        for level in range(self.depth + 1):
            h = h + pointwise(self.acts[level], pointwise(self.norms[level], self.convs[level](h, levels[level])))
            if level < self.depth:
                skips.append(h)
                h = self.pool(h, levels[level])
        if self.task == "classification":
            # the largest invariant over the sphere: a mean over 48+ coarse pixels drowns the few
            # that see the digit (the mean read-out could not even fit 64 training maps)
            return self.decode(pointwise(self.invariants, h).amax(-2))
        for level in reversed(range(self.depth)):
            linear, act = self.ups[level]
            up = self.unpool(h, levels[level]) + skips[level]
            h = skips[level] + pointwise(act, pointwise(linear, up))
        return self.decode(pointwise(self.invariants, h))


class Swin(nn.Module):
    """HEAL-SWIN at one embedding width: two stages of two blocks (the second shifted), heads 2 and 4."""

    def __init__(self, in_channels: int, width: int, num_classes: int, nside: int, task: str):
        super().__init__()
        from meshgdl.nn import HealSwin, HealSwinUNet

        cls = HealSwinUNet if task == "segmentation" else HealSwin
        self.net = cls(in_channels, num_classes, nside, embed_dim=2 * width, depths=(2, 2), heads=(2, 4),
                       window_order=2, mlp_ratio=2.0)

    def forward(self, x, levels):
        return self.net(x, levels[0])


LABELS = {"gem": "GemConv U-Net", "iso": "IsoConv U-Net", "cheb": f"DeepSphere Chebyshev (K={CHEB_ORDER})",
          "swin": "HEAL-SWIN"}
EQUIVARIANT = ("gem",)


def make(name: str, width: int, num_classes: int, nside: int, task: str, in_channels: int = 1) -> nn.Module:
    if name == "swin":
        return Swin(in_channels, width, num_classes, nside, task)
    if name not in LABELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(LABELS)}")
    return HealpixUNet(name, in_channels, width, num_classes, depth=min(3, nside.bit_length() - 2), task=task)


def build_model(name: str, budget: int, num_classes: int, nside: int, task: str) -> nn.Module:
    """The model ``name`` at the width whose parameter count is closest to ``budget``."""
    best = None
    for width in range(1, 513):
        state = torch.random.get_rng_state()
        n = count_parameters(make(name, width, num_classes, nside, task))
        torch.random.set_rng_state(state)  # so that the seed fixes the final model's weights
        if best is None or abs(n - budget) < abs(best[0] - budget):
            best = (n, width)
        if n > budget:
            break
    model = make(name, best[1], num_classes, nside, task)
    model.width = best[1]
    return model
