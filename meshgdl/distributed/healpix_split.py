r"""One rank's part of a HEALPix sky, built without the whole graph: each process holds
:math:`N / P` pixels and its halo, never the :math:`12 n_{side}^2`-pixel graph."""
from __future__ import annotations

import numpy as np
import torch

from .assign import _check_num_parts, nested_block_parts
from .graph_part import GraphPart, cut_part

_CHUNK = 1 << 20  # pixels per neighbour query: 64 MiB of int64 neighbours


def healpix_part(nside: int, num_parts: int, rank: int, mask=None, *, level: int | None = None,
                 tolerance: float = 0.05, dtype=torch.float32) -> GraphPart:
    r"""The part of rank ``rank`` of the NESTED HEALPix sky split by :func:`healpix_assignment`,
    equal to ``build_part(healpix_graph(nside, mask=mask), healpix_assignment(...), rank)``
    but built from the part's own pixels and halo: memory :math:`\propto N / P + N_\text{halo}`.

    Node ids (``node_global``) are those of ``healpix_graph(nside, mask=mask)``: the rank of the
    pixel among the kept ones (the pixel itself on a full sky). ``edge_global`` is ``None``,
    since the global edges are never built. It relies on the HEALPix neighbour relation being
    symmetric, so that the owned pixels a rank sends are the ones with a neighbour in another part.

    Args:
        nside (int), mask (optional), dtype: as in :func:`~meshgdl.geometry.healpix_graph` (NESTED order).
        num_parts (int), rank (int): :math:`P` and the part to build.
        level (int, optional), tolerance (float): as in :func:`healpix_assignment`.
    """
    import healpy as hp

    from ..geometry.healpix import check_nside, healpix_graph
    from ..geometry.healpix_mask import keep_from_mask

    nside = check_nside(nside)
    npix = 12 * nside * nside
    kept = np.arange(npix) if mask is None else np.flatnonzero(keep_from_mask(mask, npix))
    num_parts = _check_num_parts(num_parts, len(kept))
    if not 0 <= rank < num_parts:
        raise ValueError(f"rank must be in 0..{num_parts - 1}, got {rank}")
    block_parts, lv = nested_block_parts(kept, nside, num_parts, level, tolerance)
    shift = 2 * (nside.bit_length() - 1 - lv)
    part_of = np.full(npix + 1, -1, dtype=np.int32)  # slot npix catches healpy's missing neighbour (-1)
    part_of[kept] = block_parts[kept >> shift]
    owned = kept[part_of[kept] == rank]
    kept = None if mask is None else kept  # a full sky's node ids are its pixels

    halo = []
    for s in range(0, len(owned), _CHUNK):
        nbr = hp.get_all_neighbours(nside, owned[s:s + _CHUNK], nest=True).ravel()
        p = part_of[nbr]
        halo.append(np.unique(nbr[(p >= 0) & (p != rank)]))
    halo = np.unique(np.concatenate(halo)) if halo else np.empty(0, dtype=np.int64)
    local_pixels = np.union1d(owned, halo)
    keep = np.zeros(npix, dtype=bool)
    keep[local_pixels] = True
    sub = healpix_graph(nside, mask=keep, dtype=dtype, validate=False)
    assignment = torch.from_numpy(part_of[sub.pixel.numpy()].astype(np.int64))
    # sub holds only this part and its neighbours, so the check that every part owns nodes is skipped
    part = cut_part(sub, assignment, rank, num_parts)
    pixels = part.graph.pixel.numpy()
    part.node_global = torch.from_numpy(pixels if kept is None else np.searchsorted(kept, pixels))
    part.edge_global = None
    return part

