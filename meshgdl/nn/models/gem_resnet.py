r"""A GEM ResNet (de Haan et al. 2020) for node-level and graph-level tasks."""
from __future__ import annotations

import torch
from torch import Tensor

from ...field_type import FieldType
from ..gauge.equivariant_linear import EquivariantLinear
from ..gauge.gated_nonlinearity import GatedNonlinearity
from ..gauge.gauge_batch_norm import GaugeBatchNorm
from ..gauge.gauge_layer_norm import GaugeLayerNorm
from ..gauge.gem_conv import GemConv
from ..gauge.norm_nonlinearity import NormNonlinearity
from ..pool.global_invariant_pool import GlobalInvariantPool
from ..gauge.regular_nonlinearity import RegularNonlinearity


class GemResBlock(torch.nn.Module):
    r"""A residual block that stays gauge equivariant, biases included:

    .. math::
        y = P x + \mathrm{conv}_2\big(\sigma(\mathrm{norm}(\mathrm{conv}_1(x)))\big)

    with :math:`P` the identity when the types agree and an :class:`~meshgdl.nn.EquivariantLinear`
    (bias on scalars only) otherwise.

    Args:
        in_type (FieldType): input field type.
        out_type (FieldType): output field type.
        nonlinearity (str): ``"gated"``, ``"norm"`` (both exact) or ``"regular"`` (exact only for
            multiples of :math:`2\pi / N`; needs ``out_type = FieldType.uniform``) (default: ``"gated"``)
        norm (str, optional): ``"batch"``, ``"layer"`` or ``None`` (default: ``"batch"``)
        num_samples (int): ``N`` of the regular nonlinearity (default: ``16``)
        **conv_kwargs: passed to both :class:`~meshgdl.nn.GemConv` (``num_radial``, ``cutoff``, ...).
    """

    def __init__(self, in_type: FieldType, out_type: FieldType, nonlinearity: str = "gated", norm: str | None = "batch",
                 num_samples: int = 16, **conv_kwargs):
        super().__init__()
        if nonlinearity == "gated":
            act = GatedNonlinearity(out_type)
            mid = act.in_type
        elif nonlinearity == "norm":
            act, mid = NormNonlinearity(out_type), out_type
        elif nonlinearity == "regular":
            act, mid = RegularNonlinearity(out_type, num_samples=num_samples), out_type
        else:
            raise ValueError(f"nonlinearity must be 'gated', 'norm' or 'regular', got {nonlinearity!r}")
        norms = {"batch": GaugeBatchNorm, "layer": GaugeLayerNorm, None: None}
        if norm not in norms:
            raise ValueError(f"norm must be 'batch', 'layer' or None, got {norm!r}")
        self.conv1 = GemConv(in_type, mid, **conv_kwargs)
        self.norm = norms[norm](mid) if norm else torch.nn.Identity()
        self.act = act
        self.conv2 = GemConv(out_type, out_type, **conv_kwargs)
        self.skip = torch.nn.Identity() if in_type == out_type else EquivariantLinear(in_type, out_type)

    def forward(self, x: Tensor, graph) -> Tensor:
        h = self.act(self.norm(self.conv1(x, graph)))
        return self.skip(x) + self.conv2(h, graph)


class GemResNet(torch.nn.Module):
    r"""A stack of :class:`GemResBlock` between scalar input and scalar output.

    Node task: ``GemConv(in, hidden)``, ``num_blocks`` blocks, ``GemConv(hidden, out scalars)``;
    the output is :math:`[N, C_\text{out}]`, invariant under gauge transformations. Graph task: the
    blocks are followed by :class:`~meshgdl.nn.pool.global_invariant_pool.GlobalInvariantPool`
    (scalars and pair norms) and a two-layer MLP; the output is :math:`[B, C_\text{out}]`.

    Args:
        in_channels (int or FieldType): input scalars, or an input field type.
        out_channels (int): output scalars.
        hidden_type (FieldType): the field type between blocks (default: ``FieldType.uniform(16, 2)``)
        num_blocks (int): residual blocks (default: ``2``)
        task (str): ``"node"`` or ``"graph"`` (default: ``"node"``)
        **block_kwargs: ``nonlinearity``, ``norm``, ``num_samples`` and GemConv options
            (``num_radial``, ``cutoff``, ``use_edge_weight``) for every block.

    Shapes:
        - input: ``x`` :math:`[N, C_\text{in}]`, ``graph`` (a FramedGraph or PyG ``Batch``)
        - output: :math:`[N, C_\text{out}]` or :math:`[B, C_\text{out}]`
    """

    def __init__(self, in_channels, out_channels: int, hidden_type: FieldType | None = None, num_blocks: int = 2,
                 task: str = "node", **block_kwargs):
        super().__init__()
        if task not in ("node", "graph"):
            raise ValueError(f"task must be 'node' or 'graph', got {task!r}")
        in_type = in_channels if isinstance(in_channels, FieldType) else FieldType.scalars(in_channels)
        hidden = hidden_type or FieldType.uniform(16, 2)
        conv_kwargs = {k: v for k, v in block_kwargs.items() if k not in ("nonlinearity", "norm", "num_samples")}
        self.in_type, self.hidden_type, self.task = in_type, hidden, task
        self.lift = GemConv(in_type, hidden, **conv_kwargs)
        self.blocks = torch.nn.ModuleList(GemResBlock(hidden, hidden, **block_kwargs) for _ in range(num_blocks))
        if task == "node":
            self.head = GemConv(hidden, FieldType.scalars(out_channels), **conv_kwargs)
        else:
            self.pool = GlobalInvariantPool(hidden)
            width = self.pool.out_channels
            self.head = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, out_channels))

    def forward(self, x: Tensor, graph) -> Tensor:
        h = self.lift(x, graph)
        for block in self.blocks:
            h = block(h, graph)
        if self.task == "node":
            return self.head(h, graph)
        return self.head(self.pool(h, graph))
