r"""The nested HEALPix hierarchy: each pixel ``p`` of nside ``n/2`` has the children ``4p .. 4p+3``.

:func:`healpix_coarsen` builds the coarser graph and stores on the finer one what a pooling layer
needs (:mod:`meshgdl.nn.pool.healpix_pool`):

* ``pool_parent`` :math:`[N]` long: the coarse node of each node's parent pixel, ``-1`` if that
  parent was dropped (a partial sky with ``pessimistic=True``);
* ``pool_transport`` :math:`[N]`: the angle :math:`a_{cp}` of Levi-Civita transport along the great
  circle from the child's frame into its parent's frame (:func:`~meshgdl.geometry.transport_angle`
  on the actual frames, so any gauge works): a vector ``v`` in the child's frame is ``R(a) v`` in
  the parent's;
* ``pool_size`` (int): the coarse graph's number of nodes.

``pool_parent`` points into another graph, so its name has no ``index``: PyG's ``Batch`` does not
shift it. Batch features as ``[B, N, C]`` over one shared hierarchy (the pooling ops accept leading
batch dimensions), or shift ``pool_parent`` by the coarse graphs' cumulative sizes yourself.
"""
from __future__ import annotations

import numpy as np
import torch

from ..graph import FramedGraph
from .healpix import healpix_graph
from .tangent import transport_angle


def healpix_coarsen(graph: FramedGraph, *, pessimistic: bool = False, coarse: FramedGraph | None = None,
                    validate: bool | None = None) -> FramedGraph:
    """The graph of nside/2 above a nested HEALPix graph; annotates ``graph`` with the pooling map.

    Args:
        graph: a nested graph from :func:`~meshgdl.geometry.healpix_graph` (full or partial sky).
        pessimistic (bool): keep a parent only if all four children are present, as healpy's
            ``ud_grade(pess=True)``; by default a parent is kept if any child is, and pooling
            averages the children present, as ``ud_grade(pess=False)``. (default: ``False``)
        coarse (optional): the coarse graph to use (e.g. in another gauge); it must hold exactly
            the parents this rule keeps (default: built with :func:`healpix_graph`).
        validate (optional): passed to :func:`healpix_graph`.

    Returns:
        The coarse graph, in the dtype of ``graph``'s frames.
    """
    for key in ("nside", "nest", "pixel"):
        if key not in graph:
            raise ValueError(f"the graph has no {key!r}: build it with healpix_graph or healpix_map_graph")
    if not graph.nest:
        raise ValueError("pooling follows the nested hierarchy: build the graph with nest=True "
                         "(healpix_graph(nside, nest=True) or healpix_map_graph(..., graph_nest=True))")
    nside = int(graph.nside)
    if nside < 2:
        raise ValueError("nside 1 is the coarsest HEALPix level: there is nothing to pool into")
    pixel = graph.pixel.numpy()
    npix_coarse = 3 * nside * nside
    children = np.bincount(pixel // 4, minlength=npix_coarse)
    keep = children == 4 if pessimistic else children > 0
    if not keep.any():
        raise ValueError("no parent pixel has all four children; use pessimistic=False")
    if coarse is None:
        coarse = healpix_graph(nside // 2, nest=True, mask=None if keep.all() else keep,
                               dtype=graph.frame.dtype, validate=validate)
    elif coarse.nside != nside // 2 or not coarse.nest or not np.array_equal(coarse.pixel.numpy(), np.flatnonzero(keep)):
        raise ValueError("coarse must be the nested graph of nside/2 holding exactly the parents kept")
    node_of = np.full(npix_coarse, -1, dtype=np.int64)
    node_of[coarse.pixel.numpy()] = np.arange(coarse.num_nodes)
    parent = torch.from_numpy(node_of[pixel // 4])
    has = parent >= 0
    angle = torch.zeros(graph.num_nodes, dtype=graph.frame.dtype)
    angle[has] = transport_angle(graph.frame[has].double(), coarse.frame[parent[has]].double()).to(angle.dtype)
    graph.pool_parent = parent
    graph.pool_transport = angle
    graph.pool_size = coarse.num_nodes
    return coarse


def healpix_levels(graph: FramedGraph, depth: int, *, pessimistic: bool = False) -> list[FramedGraph]:
    """``[graph, nside/2, nside/4, ...]``: ``depth`` coarsenings, each level annotated for pooling
    into the next (see :func:`healpix_coarsen`). A U-Net pools ``x`` with
    ``pool_healpix(x, levels[l])`` and unpools with ``unpool_healpix(x, levels[l])``."""
    if not isinstance(depth, int) or depth < 0:
        raise ValueError(f"depth must be a non-negative integer, got {depth!r}")
    if depth and int(graph.nside) >> depth < 1:
        raise ValueError(f"nside {graph.nside} can be halved at most {int(graph.nside).bit_length() - 1} "
                         f"times, not {depth}")
    levels = [graph]
    for _ in range(depth):
        levels.append(healpix_coarsen(levels[-1], pessimistic=pessimistic))
    return levels
