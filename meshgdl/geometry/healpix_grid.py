r"""HEALPix in the base-pixel grid gauge, where regular fields of :math:`C_4` and :math:`D_4` live.

Inside each of the 12 base pixels the NESTED pixels form an ``nside x nside`` square grid: healpy's
``pix2xyf(nside, p, nest=True)`` gives :math:`(x, y, f)`, :math:`x` growing towards the base
pixel's north-east edge and :math:`y` towards its north-west edge. In this gauge each node's frame
follows its face's grid, so every transport is an exact quarter turn and every log map an exact grid
direction, which is what regular-representation group convolutions
(:class:`~meshgdl.nn.CNGroupConv` with ``order=4``, :class:`~meshgdl.nn.DNGroupConv`) need.

* **Frames.** With healpy's pixel corners ``N, W, S, E`` (``boundaries(nside, p, step=1)``, at grid
  offsets :math:`(1, 1), (0, 1), (0, 0), (1, 0)`), the grid's axes at the centre are
  :math:`u = (E + N) - (S + W)` and :math:`v = (W + N) - (S + E)`. They are not orthogonal (near
  the points where three faces meet they are :math:`120^\circ` apart), so the frame is the
  orthonormal one nearest them: with :math:`\hat u, \hat v` their unit tangent parts and
  :math:`b` the unit tangent part of :math:`\hat u + \hat v`,
  :math:`e_1 = (b - n \times b)/\sqrt 2`, :math:`e_2 = n \times e_1`, right-handed with the
  outward normal :math:`n`. :math:`e_1` and :math:`e_2` are off :math:`\hat u` and :math:`\hat v`
  by the same angle, so a reflection that swaps x and y swaps :math:`e_1` and :math:`e_2`.
* **Log maps.** healpy lists the neighbours of a pixel in compass order (SW, W, NW, N, NE, E, SE,
  S), which is the order of the grid steps :math:`d = (d_x, d_y)` = (-1, 0), (-1, 1), (0, 1),
  (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1) in the receiver's face, continued across seams.
  ``edge_logmap`` :math:`= \ell_{ij}\, d_{ij} / |d_{ij}|`, with :math:`\ell_{ij}` the exact
  geodesic length: its angle is exactly a multiple of :math:`45^\circ`.
* **Transports.** Two neighbouring faces unfold into one flat grid across their shared edge, and
  there the step from j to i, turned into i's axes, is minus the step from i to j:
  :math:`R(a_{ji})\, d_{ji} = -d_{ij}`, so

  .. math::
      a_{ji} = \arg(-d_{ij}) - \arg(d_{ji}) \in \{0, \pm\pi/2, \pi\},

  0 inside a face and a quarter turn fixed by the seam across one.

  It is the Levi-Civita transport between these frames rounded to the nearest quarter turn, with a
  rounding error below :math:`38^\circ` (:math:`37.2^\circ` at nside 128), on every
  edge that does not touch one of the 24 pixels with 7 neighbours. At those pixels it cannot be: the
  three faces around each of the 8 points where three faces meet unfold into a grid of
  :math:`270^\circ`, not :math:`360^\circ`, so around the triangle of its three corner pixels the
  quarter turns add up to :math:`\pi/2` (a cone's angle defect) where the sphere's transport adds up
  to the triangle's small area. The whole curvature :math:`4\pi` of the sphere sits in these 8
  cones. Edges touching those pixels err by up to :math:`63^\circ`, and the log-map angles by up
  to :math:`40^\circ` (:math:`31^\circ` elsewhere), from the skew of the grid near the cones
  (``tests/geometry/test_healpix_grid.py``).

The 90 degree rotations about the polar axis map faces onto faces and grids onto grids, so they map
this graph onto itself with gauge angles 0 (:func:`~meshgdl.geometry.healpix_rotation`); the
reflections :math:`\phi \to \pi k/2 - \phi` and :math:`z \to -z` map it onto itself up to a
reflection of every frame (they swap the grid axes, up to sign).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..graph import FramedGraph
from .healpix import healpix_graph

# the grid step (dx, dy) of each slot of healpy's neighbour order SW, W, NW, N, NE, E, SE, S
GRID_STEPS = np.array([(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)])


def healpix_grid_graph(nside: int, mask=None, *, dtype=torch.float32, validate: bool | None = None) -> FramedGraph:
    r"""The NESTED HEALPix graph of :func:`~meshgdl.geometry.healpix_graph` (same nodes, edges,
    positions, areas and masks) in the base-pixel grid gauge described in
    :mod:`meshgdl.geometry.healpix_grid`: frames along each face's grid, ``edge_logmap`` along
    exact grid directions, ``edge_transport`` an exact multiple of :math:`\pi/2` (0 inside a face).

    Args:
        nside (int): a power of two.
        mask (optional): pixels to keep, NESTED, as in :func:`~meshgdl.geometry.healpix_graph`.
            (default: the full sky)
        dtype: floating dtype of the result; the geometry is computed in float64.
            (default: ``torch.float32``)
        validate (bool, optional): as in :func:`~meshgdl.geometry.healpix_graph`.

    Returns:
        A graph with ``pos`` :math:`[N, 3]`, ``frame`` :math:`[N, 3, 3]`, ``edge_index``
        :math:`[2, E]`, ``edge_logmap`` :math:`[E, 2]`, ``edge_transport`` :math:`[E]` (values in
        :math:`\{0, \pm\pi/2, \pi\}`), ``node_area`` :math:`[N]`, ``pixel`` :math:`[N]` (NESTED),
        ``nside`` and ``nest=True``.
    """
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch dtype such as torch.float32, got {dtype!r}")
    base = healpix_graph(nside, nest=True, mask=mask, dtype=torch.float64, validate=False)
    pixel = base.pixel.numpy()
    frame = grid_frames(base.nside, pixel, base.pos.numpy())
    d_ij, d_ji = _edge_steps(base)
    angle = np.arctan2(d_ij[:, 1], d_ij[:, 0])
    transport = np.arctan2(-d_ij[:, 1], -d_ij[:, 0]) - np.arctan2(d_ji[:, 1], d_ji[:, 0])
    quarter = np.round(transport / (math.pi / 2)).astype(np.int64)
    if not np.allclose(transport, quarter * (math.pi / 2), atol=1e-12):  # a diagonal step met an axial one
        raise RuntimeError("healpy's neighbour slots do not unfold into a grid across a seam")
    quarter = (quarter + 1) % 4 - 1  # in {-1, 0, 1, 2}: angles in (-pi, pi]
    length = base.edge_logmap.norm(dim=1).numpy()
    logmap = np.stack([np.cos(angle), np.sin(angle)], 1) * length[:, None]
    graph = FramedGraph(
        pos=base.pos.to(dtype), frame=torch.from_numpy(frame).to(dtype), edge_index=base.edge_index,
        edge_logmap=torch.from_numpy(logmap).to(dtype),
        edge_transport=torch.from_numpy(quarter * (math.pi / 2)).to(dtype),
        node_area=base.node_area.to(dtype), pixel=base.pixel, nside=base.nside, nest=True,
    )
    if validate or (validate is None and graph.num_edges <= 10_000_000):
        graph.validate()
    return graph


def grid_frames(nside: int, pixel: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Frames ``[N, 3, 3]`` (rows e1, e2, n) along the face grids at NESTED ``pixel`` ``[N]`` with
    unit centres ``pos`` ``[N, 3]``: the orthonormal frame nearest the grid axes, e1 and e2 at
    -45 and +45 degrees from the tangent part of their diagonal ``N - S``, whose other diagonal
    ``E - W`` fixes nothing more (the frame bisects the grid's axes, whatever their skew)."""
    import healpy as hp

    north, west, south, east = np.moveaxis(hp.boundaries(nside, pixel, step=1, nest=True).reshape(-1, 3, 4), 2, 0)
    x_axis, y_axis = (east + north) - (south + west), (west + north) - (south + east)
    diagonal = _unit_tangent(_unit_tangent(x_axis, pos) + _unit_tangent(y_axis, pos), pos)
    across = np.cross(pos, diagonal)
    e1 = (diagonal - across) / math.sqrt(2)
    return np.stack([e1, np.cross(pos, e1), pos], 1)


def _unit_tangent(v: np.ndarray, pos: np.ndarray) -> np.ndarray:
    v = v - (v * pos).sum(1, keepdims=True) * pos
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _edge_steps(graph: FramedGraph):
    """Grid steps ``[E, 2]`` of every edge j -> i: from i to j in i's face, and from j to i in j's
    (found in healpy's neighbour lists of the full sky, so masks do not matter)."""
    import healpy as hp

    pixel = graph.pixel.numpy()
    nb = hp.get_all_neighbours(graph.nside, pixel, nest=True).T  # [N, 8]
    j, i = graph.edge_index.numpy()
    slot_ij, slot_ji = _slot(nb[i], pixel[j]), _slot(nb[j], pixel[i])
    return GRID_STEPS[slot_ij], GRID_STEPS[slot_ji]


def _slot(rows: np.ndarray, target: np.ndarray) -> np.ndarray:
    hit = rows == target[:, None]
    if not (hit.sum(1) == 1).all():  # healpy lists each neighbour once, and neighbours are mutual
        raise RuntimeError("a HEALPix edge is not found exactly once in healpy's neighbour lists")
    return hit.argmax(1)
