r"""Regular square grids (images) as framed graphs, and their 90 degree rotations.

Pixel ``(r, c)`` of an ``H x W`` image is node ``n = r W + c``, so ``image.reshape(C, -1).T`` are the
node features. Nodes sit at ``pos = (c, r, 0) * spacing`` and share the constant frame
``e1 = (1, 0, 0)``, ``e2 = (0, 1, 0)``, ``n = (0, 0, 1)``: the grid is flat, every transport angle is
zero, and the log map of edge j -> i is the displacement :math:`x_j - x_i` (across the seam of a
periodic grid: the short way round).

A rotation of the image by :math:`90^\circ k` is a symmetry of the grid. :func:`grid_rotation` gives
it as a node permutation and a constant gauge angle :math:`\theta = k\pi/2`:

.. math::
    \operatorname{gauge\_transform}(\operatorname{permute\_nodes}(G, \pi), \theta) = G
    \quad \text{(edges matched by their end nodes)},

and a field of SO(2) frequency :math:`m` on the rotated image is
:math:`f'_n = R(-m\theta)\, f_{\pi(n)}` (``FieldType.transform(x[perm], angles)``): scalars are
just permuted (``torch.rot90(img, k, dims=(-2, -1)).reshape(-1) == img.reshape(-1)[perm]``), and
tangent vectors are permuted and turned by :math:`-90^\circ k` in the :math:`(x, y) = (c, r)` plane.
"""
from __future__ import annotations

import math
import operator

import torch

from ..graph import FramedGraph

# neighbour offsets (dc, dr), counter-clockwise from +x; this is the order of each node's in-edges
_OFFSETS = {
    4: [(1, 0), (0, 1), (-1, 0), (0, -1)],
    8: [(1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1)],
}


def grid_graph(height: int, width: int, *, connectivity: int = 4, periodic: bool = False,
               spacing: float = 1.0, dtype=None) -> FramedGraph:
    r"""Build the framed graph of an ``height x width`` grid of pixels.

    Args:
        height (int): number of rows :math:`H \ge 1`.
        width (int): number of columns :math:`W \ge 1`.
        connectivity (int): 4 (edges to the pixels left, right, above, below) or 8 (also the
            diagonals). (default: ``4``)
        periodic (bool): wrap around both axes (a torus); needs :math:`H, W \ge 3` so that a
            pixel's neighbours are distinct pixels. (default: ``False``)
        spacing (float): distance between neighbouring pixel centres. (default: ``1.0``)
        dtype: floating dtype (default: ``torch.get_default_dtype()``).

    Returns:
        A graph with ``pos`` :math:`[HW, 3]`, ``frame`` (the identity at every node),
        ``edge_index`` (sorted by target, then counter-clockwise from :math:`+x`),
        ``edge_logmap`` (:math:`x_j - x_i`, the short way across a periodic seam),
        ``edge_transport`` (zero), ``node_area`` (:math:`\text{spacing}^2`), and the plain
        attributes ``grid_shape = (H, W)`` and ``periodic``.
    """
    height, width = _check_size(height, width)
    if connectivity not in _OFFSETS:
        raise ValueError(f"connectivity must be 4 or 8 (neighbours per pixel), got {connectivity!r}")
    spacing = float(spacing)
    if not math.isfinite(spacing) or spacing <= 0:
        raise ValueError(f"spacing must be a positive number, got {spacing}")
    if periodic and min(height, width) < 3:
        raise ValueError(
            f"a periodic grid needs at least 3 rows and 3 columns so that each pixel's neighbours "
            f"are distinct pixels, got {height} x {width}; use periodic=False or a larger grid"
        )
    dtype = dtype or torch.get_default_dtype()
    n = height * width
    r, c = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    r, c = r.reshape(-1), c.reshape(-1)
    offsets = torch.tensor(_OFFSETS[connectivity])  # [K, 2]
    src_r = r[:, None] + offsets[:, 1]  # [N, K]: each target's neighbours in offset order
    src_c = c[:, None] + offsets[:, 0]
    if periodic:
        keep = torch.ones_like(src_r, dtype=torch.bool)
        src_r, src_c = src_r % height, src_c % width
    else:
        keep = (src_r >= 0) & (src_r < height) & (src_c >= 0) & (src_c < width)
    dst = torch.arange(n)[:, None].expand_as(src_r)
    disp = offsets[None].expand(n, -1, -1)
    edge_index = torch.stack([(src_r * width + src_c)[keep], dst[keep]])
    edge_logmap = disp[keep].to(torch.float64) * spacing
    num_e = edge_index.shape[1]

    pos = torch.stack([c, r, torch.zeros_like(r)], dim=-1).to(torch.float64) * spacing
    frame = torch.eye(3, dtype=torch.float64).expand(n, 3, 3).contiguous()
    graph = FramedGraph(
        pos=pos.to(dtype), frame=frame.to(dtype), edge_index=edge_index,
        edge_logmap=edge_logmap.to(dtype), edge_transport=torch.zeros(num_e, dtype=dtype),
        node_area=torch.full((n,), spacing**2, dtype=dtype), num_nodes=n,
        grid_shape=(height, width), periodic=bool(periodic),
    )
    return graph.validate()


def grid_rotation(height: int, width: int, k: int = 1):
    r"""The rotation of an ``height x width`` image by :math:`90^\circ k`, as ``(perm, angles)``.

    ``perm`` :math:`[HW]` is defined by
    ``torch.rot90(img, k, dims=(-2, -1)).reshape(-1) == img.reshape(-1)[perm]``, and ``angles``
    :math:`[HW]` is the constant :math:`\theta = k\pi/2` (wrapped to :math:`(-\pi, \pi]`), so that
    ``gauge_transform(permute_nodes(graph, perm), angles)`` has the log maps and transports of
    ``graph`` on every edge, for every :func:`grid_graph` of this shape (any connectivity,
    periodic or not). Its positions and frames are those of ``graph`` turned by :math:`+\theta`
    about the grid centre in the :math:`(x, y) = (c, r)` plane: node n of the rotated image looks
    at the pixel that sat at :math:`R(\theta)(x_n - x_0) + x_0` before the rotation.

    A feature of frequency :math:`m` (``m = 0`` scalars, ``m = 1`` tangent vectors) on the rotated
    image is :math:`f'_n = R(-m\theta) f_{\pi(n)}`; ``FieldType.transform(x[perm], angles)``
    applies it to a whole feature tensor. Non-square grids allow only even ``k``.
    """
    height, width = _check_size(height, width)
    k = _as_int(k, "k (the number of quarter turns)")
    if k % 2 and height != width:
        raise ValueError(
            f"a {height} x {width} grid is not square: only rotations by 180 degrees (even k) map it "
            f"onto itself, got k = {k}"
        )
    ids = torch.arange(height * width).reshape(height, width)
    perm = torch.rot90(ids, k, dims=(-2, -1)).reshape(-1)
    theta = math.remainder(k * math.pi / 2, 2 * math.pi)
    if theta == -math.pi:
        theta = math.pi
    return perm, torch.full((height * width,), theta, dtype=torch.float64)


def _as_int(value, name: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None


def _check_size(height, width):
    height, width = _as_int(height, "height"), _as_int(width, "width")
    for name, value in (("height", height), ("width", width)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    return height, width
