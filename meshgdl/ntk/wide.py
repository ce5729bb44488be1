r"""Networks in NTK parametrisation, whose infinite-width kernels :mod:`meshgdl.ntk.analytic` gives.

Every weight is a standard normal :math:`W`, used as :math:`\frac{\sigma_w}{\sqrt{n_\text{in}}} W`,
and every bias as :math:`\sigma_b b` with :math:`b \sim \mathcal{N}(0, 1)`: the kernels then have a
finite limit as the width grows, and gradient descent at a fixed learning rate follows the
linearised network more closely the wider it is (Jacot et al. 2018; Lee et al. 2019).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..ops import scatter_mean
from .analytic import ACTIVATIONS


def _activation(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
    return torch.relu if name == "relu" else torch.erf


class _NTKLinear(torch.nn.Module):
    def __init__(self, n_in: int, n_out: int, weight_std: float, bias_std: float, bias: bool = True):
        super().__init__()
        self.scale, self.bias_std = weight_std / math.sqrt(n_in), bias_std
        self.weight = torch.nn.Parameter(torch.randn(n_out, n_in))
        self.bias = torch.nn.Parameter(torch.randn(n_out)) if bias and bias_std > 0 else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.scale * (x @ self.weight.T)
        return out if self.bias is None else out + self.bias_std * self.bias


class NTKMLP(torch.nn.Module):
    r"""Fully connected network in NTK parametrisation,

    .. math::
        h^{1} = \frac{\sigma_w}{\sqrt d} W^{1} x + \sigma_b b^{1}, \qquad
        h^{l+1} = \frac{\sigma_w}{\sqrt n} W^{l+1} \phi(h^{l}) + \sigma_b b^{l+1},

    with ``depth`` nonlinearities and the output :math:`h^{\text{depth}+1}`; its infinite-width kernels
    are :func:`~meshgdl.ntk.mlp_kernels`.

    Args:
        in_features (int): :math:`d` (inputs are flattened after the batch dimension).
        width (int): hidden units :math:`n`.
        out_features (int): outputs. (default: ``1``)
        depth (int): hidden layers. (default: ``1``)
        activation (str): ``"relu"`` or ``"erf"``. (default: ``"relu"``)
        weight_std, bias_std (float): :math:`\sigma_w, \sigma_b` (no biases when 0). (default: ``1.0``, ``0.0``)

    Shapes:
        - input: :math:`[B, \dots]` with :math:`d` entries per sample; output :math:`[B, \text{out}]`.
    """

    def __init__(self, in_features: int, width: int, out_features: int = 1, depth: int = 1,
                 activation: str = "relu", weight_std: float = 1.0, bias_std: float = 0.0):
        super().__init__()
        self.phi = _activation(activation)
        sizes = [in_features] + [width] * depth + [out_features]
        self.layers = torch.nn.ModuleList(_NTKLinear(a, b, weight_std, bias_std) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x: Tensor) -> Tensor:
        h = self.layers[0](x.reshape(x.shape[0], -1))
        for layer in self.layers[1:]:
            h = layer(self.phi(h))
        return h


def mean_aggregation(graph) -> Tensor:
    r"""The dense aggregation :math:`A_{ij} = 1/\deg(i)` for each edge :math:`j \to i` (mean over
    in-neighbours, as :class:`~meshgdl.nn.IsoConv` with ``normalize=True``), :math:`[N, N]`."""
    n = graph.num_nodes
    src, dst = graph.edge_index
    eye = torch.eye(n, dtype=graph.pos.dtype)
    return scatter_mean(eye[src], dst, n)


class NTKGraphNet(torch.nn.Module):
    r"""Isotropic graph network in NTK parametrisation: each layer is

    .. math::
        h'_i = \frac{\sigma_w}{\sqrt n}\Big(U g_i + V \frac{1}{\deg i}\sum_{j \to i} g_j\Big) + \sigma_b b,

    :math:`g = x` for the first layer and :math:`\phi(h)` after, with ``depth`` nonlinearities;
    ``readout="mean"`` averages the last layer over nodes (one row per graph). Its infinite-width
    kernels are :func:`~meshgdl.ntk.graph_kernels` with :func:`mean_aggregation`.

    Args:
        in_channels (int), width (int), out_channels (int), depth (int), activation (str),
        weight_std, bias_std (float): as :class:`NTKMLP`. (defaults ``1``, ``1``, ``"relu"``, ``1.0``, ``0.0``)
        readout (str): ``"node"`` or ``"mean"``. (default: ``"node"``)

    Shapes:
        - input: ``x`` :math:`[N, C_\text{in}]`, ``graph`` with ``edge_index``.
        - output: :math:`[N, C_\text{out}]`, or :math:`[1, C_\text{out}]` with ``readout="mean"``.
    """

    def __init__(self, in_channels: int, width: int, out_channels: int = 1, depth: int = 1,
                 activation: str = "relu", weight_std: float = 1.0, bias_std: float = 0.0, readout: str = "node"):
        super().__init__()
        if readout not in ("node", "mean"):
            raise ValueError(f"readout must be 'node' or 'mean', got {readout!r}")
        self.phi, self.readout = _activation(activation), readout
        sizes = [in_channels] + [width] * depth + [out_channels]
        self.self_layers = torch.nn.ModuleList(_NTKLinear(a, b, weight_std, bias_std) for a, b in zip(sizes, sizes[1:]))
        self.neighbour_layers = torch.nn.ModuleList(_NTKLinear(a, b, weight_std, 0.0) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x: Tensor, graph) -> Tensor:
        src, dst = graph.edge_index
        g = x
        for layer, (own, other) in enumerate(zip(self.self_layers, self.neighbour_layers)):
            if layer:
                g = self.phi(g)
            g = own(g) + other(scatter_mean(g[src], dst, x.shape[0]))
        return g.mean(0, keepdim=True) if self.readout == "mean" else g
