r"""The lattice gauge equivariant CNN (L-CNN) as a reference model."""
from __future__ import annotations

import torch
from torch import Tensor

from ..lattice.lattice_activation import LatticeActivation
from ..lattice.lattice_bilinear import LatticeBilinear
from ..lattice.lattice_conv import LatticeConv
from ..lattice.trace_readout import TraceReadout
from ..lattice.wilson_loop_input import WilsonLoopInput


class LCNN(torch.nn.Module):
    r"""L-CNN of `Favoni, Ipp, Mueller and Schuh (PRL 128, 032003, 2022)
    <https://arxiv.org/abs/2012.12901>`_: Wilson-loop inputs, then blocks of

    .. math::
        H = \mathrm{LatticeConv}(F), \qquad F \leftarrow \mathrm{LatticeBilinear}(H, F), \qquad
        F \leftarrow \mathrm{LatticeActivation}(F),

    and a :class:`TraceReadout` to gauge-invariant scalars at every site (or their mean over each
    lattice with ``pool=True``). Every part is gauge equivariant and commutes with lattice
    translations, so the model does too. The bilinear layer multiplies the transported features
    by the block's input, so the loops the network can form grow with each block (two blocks of
    ``kernel_size=1`` on plaquettes reach the :math:`2\times2` loop).

    Args:
        channels (sequence of int): matrix channels after each block. (default: ``(4, 4)``)
        out_channels (int): scalar outputs per site. (default: ``1``)
        kernel_size (int): longest transport path of each convolution. (default: ``1``)
        dim (int): the lattice dimension. (default: ``2``)
        loop_sizes (sequence of (int, int)): Wilson loops fed as inputs. (default: ``((1, 1),)``)
        activation (bool): use a :class:`LatticeActivation` (with a learned per-channel scale and
            shift) after each block. (default: ``True``)
        pool (bool): average the outputs over each lattice. (default: ``False``)

    Shapes:
        - input: a lattice graph or batch (:func:`meshgdl.geometry.lattice_graph`)
        - output: :math:`[N, C_{out}]`, or :math:`[B, C_{out}]` with ``pool=True``
    """

    def __init__(self, channels=(4, 4), out_channels: int = 1, kernel_size: int = 1, dim: int = 2,
                 loop_sizes=((1, 1),), activation: bool = True, pool: bool = False):
        super().__init__()
        self.inputs = WilsonLoopInput(loop_sizes, dim=dim)
        self.pool = pool
        self.convs = torch.nn.ModuleList()
        self.bilinears = torch.nn.ModuleList()
        self.activations = torch.nn.ModuleList()
        c_in = self.inputs.out_channels
        for c in channels:
            self.convs.append(LatticeConv(c_in, c, kernel_size, dim=dim))
            self.bilinears.append(LatticeBilinear(c, c_in, c))
            self.activations.append(LatticeActivation(c) if activation else torch.nn.Identity())
            c_in = c
        self.readout = TraceReadout(c_in, out_channels)

    def forward(self, graph) -> Tensor:
        x = self.inputs(graph)
        for conv, bilinear, activation in zip(self.convs, self.bilinears, self.activations):
            x = activation(bilinear(conv(x, graph), x))
        y = self.readout(x)
        if not self.pool:
            return y
        batch = graph.batch if "batch" in graph and graph.batch is not None else torch.zeros(
            y.shape[0], dtype=torch.long, device=y.device)
        total = y.new_zeros(int(batch.max()) + 1, y.shape[1]).index_add_(0, batch, y)
        return total / torch.bincount(batch).to(y.dtype)[:, None]
