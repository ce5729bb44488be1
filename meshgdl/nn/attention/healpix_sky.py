r"""The pixels a HEAL-SWIN layer works on: a resolution and the kept NESTED pixels, with the windows,
patches and coarser levels derived from them once and cached, like the graph operators."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ... import ops
from ...geometry.healpix import check_nside
from ...geometry.healpix_windows import WindowPlan, window_plan


class HealpixSky:
    r"""``nside`` and the sorted NESTED pixels kept, ``pixel`` :math:`[N]`.

    Build it from a graph of :func:`~meshgdl.geometry.healpix_graph` (``nest=True``, any mask) with
    :meth:`of`; every HEAL-SWIN layer accepts either. Derived tables (windows, patches, coarser
    levels) are cached on the ``pixel`` tensor and live as long as it does.
    """

    def __init__(self, nside: int, pixel: Tensor | None = None):
        self.nside = check_nside(nside)
        npix = 12 * self.nside ** 2
        self.pixel = torch.arange(npix) if pixel is None else torch.as_tensor(pixel, dtype=torch.long)
        self.full = len(self.pixel) == npix

    @classmethod
    def of(cls, graph) -> "HealpixSky":
        if isinstance(graph, HealpixSky):
            return graph
        if not all(hasattr(graph, key) for key in ("nside", "pixel", "nest")):
            raise TypeError("HEAL-SWIN layers take a HEALPix graph from meshgdl.geometry.healpix_graph "
                            f"(with nside, pixel and nest) or a HealpixSky, got {type(graph).__name__}")
        if not graph.nest:
            raise ValueError("HEAL-SWIN windows are runs of NESTED pixels, but this graph is in RING order; "
                             "build it with healpix_graph(nside, nest=True) (or healpix_map_graph(..., graph_nest=True))")
        return cls(int(graph.nside), graph.pixel)

    @property
    def num_nodes(self) -> int:
        return len(self.pixel)

    def _cached(self, key: tuple, build):
        return ops.cached_operator(self.pixel, key, build)

    def coarser(self, order: int) -> "HealpixSky":
        """The sky at ``nside / 2^order``: every parent of a kept pixel is kept."""
        if order == 0:
            return self
        if self.nside >> order == 0:
            raise ValueError(f"cannot coarsen nside {self.nside} by 4^{order}: nside would fall below 1")
        return self._cached(("coarser", order), lambda: HealpixSky(self.nside >> order,
                                                                 torch.unique(self.pixel >> 2 * order)))

    def children(self, order: int) -> Tensor | None:
        r"""``[M, 4^order]``: for each pixel of :meth:`coarser`, its children in NESTED order, as
        indices into this sky (``N`` where a child is not kept); ``None`` for a full sky."""
        if self.full:
            return None

        def build():
            coarse = self.coarser(order).pixel
            group = 4 ** order
            child = (coarse[:, None] << 2 * order) + torch.arange(group)
            node = torch.full((12 * self.nside ** 2 + 1,), self.num_nodes, dtype=torch.long)
            node[self.pixel] = torch.arange(self.num_nodes)
            return node[child]

        return self._cached(("children", order), build)

    def child_positions(self, order: int) -> Tensor:
        r"""``[N]``: where each kept pixel sits among the :math:`4^{order}` children of the coarser
        pixels laid out in order (the inverse of :meth:`children`)."""
        def build():
            child = self.children(order).reshape(-1)
            kept = child < self.num_nodes
            position = torch.empty(self.num_nodes, dtype=torch.long)
            position[child[kept]] = kept.nonzero().squeeze(1)
            return position

        return self._cached(("child_positions", order), build)

    def windows(self, window_order: int, shift: str | None, device=None) -> WindowPlan:
        """The :class:`~meshgdl.geometry.healpix_windows.WindowPlan` of this sky, on ``device``."""
        key = ("windows", window_order, shift, str(device))

        def build():
            pixel = None if self.full else np.asarray(self.pixel.numpy())
            return window_plan(self.nside, pixel, window_order, shift).to(device)

        return self._cached(key, build)

    def __repr__(self) -> str:
        return f"HealpixSky(nside={self.nside}, pixels={self.num_nodes}{'' if self.full else ', partial'})"


def gather_groups(x: Tensor, index: Tensor | None, group: int) -> Tensor:
    """``[..., N, C]`` -> ``[..., M, group, C]``: consecutive runs (``index=None``) or the rows of
    ``index`` ``[M, group]``, with zeros where ``index`` is ``N`` (padding)."""
    if index is None:
        return x.unflatten(-2, (-1, group))
    pad = x.new_zeros(*x.shape[:-2], 1, x.shape[-1])
    return torch.cat([x, pad], dim=-2)[..., index.to(x.device), :]
