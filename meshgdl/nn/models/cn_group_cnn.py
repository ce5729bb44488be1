r"""A :math:`C_N` group CNN (Cohen & Welling 2016) for images on grids and on HEALPix."""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.utils import scatter

from ..group.cn_group_conv import CNGroupConv
from ..group.cn_lifting_conv import CNLiftingConv
from ..group.cn_orientation_pool import CNOrientationPool


class CNGroupCNN(torch.nn.Module):
    r"""A :math:`C_N` group CNN (`Cohen & Welling 2016 <https://arxiv.org/abs/1602.07576>`_): a
    :class:`~meshgdl.nn.CNLiftingConv`, :class:`~meshgdl.nn.CNGroupConv` layers, each followed by
    a ReLU, a :class:`~meshgdl.nn.CNOrientationPool` to invariant scalars and an MLP read-out:

    .. math::
        h = \mathrm{pool}_r\, \sigma(G_L \cdots \sigma(G_1\, \sigma(\Lambda x))), \qquad
        y_i = \mathrm{MLP}(h_i) \quad\text{or}\quad y_b = \mathrm{MLP}\Big(\tfrac{1}{|b|}\sum_{i \in b} h_i\Big).

    A ReLU acts on every orientation alike, so it commutes with the shifts of the regular fields;
    on a graph whose symmetries turn the frames by multiples of :math:`2\pi / N` (the quarter
    turns of a :func:`~meshgdl.geometry.grid_graph` for ``N = 4, 8``, the polar quarter turns of a
    :func:`~meshgdl.geometry.healpix_grid_graph`) a node-level output moves with the nodes and a
    graph-level output does not change, exactly.

    Args:
        in_channels (int): input scalars.
        out_channels (int): outputs (class logits or values).
        order (int): :math:`N` (default: ``4``)
        channels (tuple): channels of the lifting layer and of each group convolution after it
            (default: ``(8, 8)``)
        bandwidth (int): highest angular frequency of the filters (default: ``4``)
        task (str): ``"node"`` or ``"graph"`` (the mean over each graph's nodes) (default: ``"graph"``)
        reduce (str): the orientation pooling, ``"max"`` or ``"mean"`` (default: ``"max"``)

    Shapes:
        - input: ``x`` :math:`[N, C_\text{in}]`, ``graph`` a FramedGraph or a PyG ``Batch``
        - output: :math:`[N, C_\text{out}]` (node task) or :math:`[B, C_\text{out}]` (graph task)
    """

    def __init__(self, in_channels: int, out_channels: int, order: int = 4, channels=(8, 8), bandwidth: int = 4,
                 task: str = "graph", reduce: str = "max"):
        super().__init__()
        if task not in ("node", "graph"):
            raise ValueError(f"task must be 'node' or 'graph', got {task!r}")
        channels = tuple(int(c) for c in channels)
        if not channels:
            raise ValueError("channels needs at least one entry (the lifting layer's)")
        self.task = task
        self.lift = CNLiftingConv(in_channels, channels[0], order, bandwidth)
        self.convs = torch.nn.ModuleList(CNGroupConv(a, b, order, bandwidth) for a, b in zip(channels, channels[1:]))
        self.pool = CNOrientationPool(order, reduce)
        width = channels[-1]
        self.head = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, out_channels))

    def forward(self, x: Tensor, graph) -> Tensor:
        h = torch.relu(self.lift(x, graph))
        for conv in self.convs:
            h = torch.relu(conv(h, graph))
        h = self.pool(h)
        if self.task == "graph":
            batch = getattr(graph, "batch", None)
            if batch is None:
                h = h.mean(0, keepdim=True)
            else:
                h = scatter(h, batch, dim=0, dim_size=graph.num_graphs, reduce="mean")
        return self.head(h)
