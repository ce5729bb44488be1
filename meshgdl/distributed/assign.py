r"""Which rank owns each node: HEALPix by nested ranges, meshes and point clouds with METIS."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..graph import FramedGraph


def assign_parts(graph: FramedGraph, num_parts: int, method: str | None = None, **kwargs) -> Tensor:
    r"""A part id in ``0..num_parts - 1`` for every node, :math:`[N]` long.

    Args:
        graph (FramedGraph): the graph to split.
        num_parts (int): :math:`P`.
        method (str, optional): ``"healpix"`` (:func:`healpix_assignment`, for graphs of
            :func:`~meshgdl.geometry.healpix_graph`) or ``"metis"`` (:func:`metis_assignment`)
            (default: ``"healpix"`` when the graph carries ``pixel`` and ``nside``, else ``"metis"``)
        **kwargs: passed to the method.
    """
    if method is None:
        method = "healpix" if _is_healpix(graph) else "metis"
    if method == "healpix":
        return healpix_assignment(graph, num_parts, **kwargs)
    if method == "metis":
        return metis_assignment(graph, num_parts, **kwargs)
    raise ValueError(f"method must be 'healpix' or 'metis' (or pass your own assignment), got {method!r}")


def _is_healpix(graph) -> bool:
    return "pixel" in graph and "nside" in graph and graph.pixel is not None


def _check_num_parts(num_parts, num_nodes: int) -> int:
    if isinstance(num_parts, bool) or not isinstance(num_parts, (int, np.integer)) or num_parts < 1:
        raise ValueError(f"num_parts must be a positive integer, got {num_parts!r}")
    if num_parts > num_nodes:
        raise ValueError(f"cannot split {num_nodes} nodes into {num_parts} non-empty parts; use fewer parts")
    return int(num_parts)


def nested_block_parts(nested: np.ndarray, nside: int, num_parts: int, level: int | None = None,
                       tolerance: float = 0.05) -> tuple[np.ndarray, int]:
    """Part of every block of ``12 * 4**level`` nested blocks, and the level: consecutive blocks
    go to one part, balancing the kept pixels. ``level=None`` takes the coarsest level whose
    largest part holds at most ``1 + tolerance`` times the mean (or the pixel level)."""
    order = nside.bit_length() - 1
    n = len(nested)
    levels = range(order + 1) if level is None else [level]
    if level is not None and not 0 <= level <= order:
        raise ValueError(f"level must be in 0..{order} (log2 nside), got {level}")
    for lv in levels:
        if 12 * 4 ** lv < num_parts and lv < order:
            continue
        counts = np.bincount(nested >> 2 * (order - lv), minlength=12 * 4 ** lv)
        middle = np.cumsum(counts) - counts / 2  # a block goes where its middle pixel falls
        parts = np.minimum((middle * num_parts / n).astype(np.int64), num_parts - 1)
        sizes = np.bincount(parts, weights=counts, minlength=num_parts)
        if sizes.min() > 0 and sizes.max() <= (1 + tolerance) * n / num_parts:
            return parts, lv
    return parts, lv


def healpix_assignment(graph: FramedGraph, num_parts: int, level: int | None = None,
                       tolerance: float = 0.05) -> Tensor:
    r"""Split a HEALPix graph into ranges of the NESTED ordering made of whole blocks.

    The blocks of level :math:`L` are the :math:`12 \cdot 4^L` sets of :math:`4^{o - L}` nested
    pixels (:math:`o = \log_2 n_{side}`; level 0 the base pixels), each compact on the sphere.
    Consecutive blocks go to one part so that the parts hold equal numbers of kept pixels (a
    partial sky counts only the pixels of its mask), so every part is a union of few compact blocks
    and its halo is a ring around them.

    Args:
        graph (FramedGraph): from :func:`~meshgdl.geometry.healpix_graph` (``pixel``, ``nside``,
            ``nest``; any mask, either ordering).
        num_parts (int): :math:`P`.
        level (int, optional): the block level :math:`L` (default: the coarsest whose largest part
            is within ``tolerance`` of the mean; full skies with :math:`P` dividing
            :math:`12 \cdot 4^L` split exactly)
        tolerance (float): allowed excess of the largest part over the mean (default: ``0.05``)
    """
    import healpy as hp

    if not _is_healpix(graph):
        raise ValueError("healpix_assignment needs a graph from meshgdl.geometry.healpix_graph (with pixel and "
                         "nside); split other graphs with metis_assignment or your own assignment")
    pixel = graph.pixel.cpu().numpy()
    num_parts = _check_num_parts(num_parts, len(pixel))
    nested = pixel if getattr(graph, "nest", True) else hp.ring2nest(graph.nside, pixel)
    parts, lv = nested_block_parts(nested, int(graph.nside), num_parts, level, tolerance)
    order = int(graph.nside).bit_length() - 1
    return torch.from_numpy(parts[nested >> 2 * (order - lv)])


def symmetric_adjacency(edge_index: Tensor, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(xadj, adjncy)`` of the undirected graph of ``edge_index`` without self loops or
    repeated edges, as METIS wants it (both directions stored)."""
    src, dst = edge_index.cpu().long()
    keep = src != dst
    src, dst = src[keep], dst[keep]
    keys = torch.unique(torch.cat([src * num_nodes + dst, dst * num_nodes + src]))
    row, col = keys // num_nodes, keys % num_nodes
    xadj = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(row.numpy(), minlength=num_nodes), out=xadj[1:])
    return xadj, col.numpy()


def metis_assignment(graph: FramedGraph, num_parts: int, seed: int = 0, contiguous: bool = False) -> Tensor:
    r"""Split any graph with METIS (through ``pymetis``): parts of equal size (to METIS's
    default 3 % imbalance) with few edges cut, hence small halos.

    Edges are taken undirected (a one-way kNN edge ties its nodes as well), without weights.

    Args:
        graph (FramedGraph): a mesh, point cloud or any graph with ``edge_index``.
        num_parts (int): :math:`P`.
        seed (int): METIS's random seed; a seed gives the same parts every run. (default: ``0``)
        contiguous (bool): ask METIS for connected parts (needs a connected graph) (default: ``False``)
    """
    try:
        import pymetis
    except ImportError:
        raise ImportError("metis_assignment needs pymetis: pip install 'meshgdl[partition]' (or pip install "
                          "pymetis); HEALPix graphs split without it (healpix_assignment), and any graph splits "
                          "by an assignment of your own") from None
    n = graph.num_nodes
    num_parts = _check_num_parts(num_parts, n)
    if num_parts == 1:
        return torch.zeros(n, dtype=torch.long)
    xadj, adjncy = symmetric_adjacency(graph.edge_index, n)
    # pymetis 2025.2 takes a CSRAdjacency and deprecates xadj/adjncy; older releases know only those
    graph_kw = ({"adjacency": pymetis.CSRAdjacency(xadj, adjncy)} if hasattr(pymetis, "CSRAdjacency")
                else {"xadj": xadj, "adjncy": adjncy})
    result = pymetis.part_graph(num_parts, **graph_kw, contiguous=contiguous or None,
                                options=pymetis.Options(seed=seed))
    parts = torch.as_tensor(np.asarray(result[1]), dtype=torch.long)
    if int(torch.bincount(parts, minlength=num_parts).min()) == 0:
        raise ValueError(f"METIS left a part empty splitting {n} nodes into {num_parts}; use fewer parts")
    return parts
