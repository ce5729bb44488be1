r"""Pooling over the orientations of a :math:`C_N` regular field: invariant scalars."""
from __future__ import annotations

import torch
from torch import Tensor


class CNOrientationPool(torch.nn.Module):
    r"""Reduce each channel over its ``N`` orientations, :math:`y_{i,c} = \max_r x_{i,c,r}` (or
    the mean): a gauge-invariant scalar field, the usual end of a group CNN.

    Args:
        order (int): :math:`N`.
        reduce (str): ``"max"`` or ``"mean"`` (default: ``"max"``)

    Shapes:
        - input: :math:`[N_\text{nodes}, C N]`, output: :math:`[N_\text{nodes}, C]`.
    """

    def __init__(self, order: int, reduce: str = "max"):
        super().__init__()
        if reduce not in ("max", "mean"):
            raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")
        self.order, self.reduce = order, reduce

    def forward(self, x: Tensor, graph=None) -> Tensor:
        grid = x.unflatten(-1, (-1, self.order))
        return grid.amax(-1) if self.reduce == "max" else grid.mean(-1)

    def __repr__(self) -> str:
        return f"CNOrientationPool({self.order}, reduce={self.reduce!r})"
