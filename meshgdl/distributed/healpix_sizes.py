r"""Halo sizes of a full HEALPix sky split into nested ranges, in closed form from the blocks:
what each process holds and exchanges, at any nside, without building a graph."""
from __future__ import annotations

import numpy as np

from .assign import nested_block_parts

# healpy.get_all_neighbours order: SW, W, NW, N, NE, E, SE, S. Sides are shared with one block
# along a whole edge of the diamond, corners touch it at one pixel.
_SIDES = (0, 2, 4, 6)
_CORNERS = ((1, 0, 2), (3, 2, 4), (5, 4, 6), (7, 6, 0))  # corner, its two sides


def healpix_halo_sizes(nside: int, num_parts: int, tolerance: float = 0.05) -> dict:
    r"""Owned, halo and sent rows of every part of the full NESTED sky split by
    :func:`~meshgdl.distributed.healpix_assignment`, counted from the blocks alone.

    A part is a union of blocks, squares of :math:`s \times s` pixels. A pixel of a block
    :math:`B` outside part :math:`q` is in :math:`q`'s halo when it touches :math:`q`: the strip of
    :math:`s` pixels along each side :math:`B` shares with a block of :math:`q`, and the corner
    pixel where :math:`B` meets a block of :math:`q` at a corner only, so

    .. math::
        h(B, q) = s\,|S| - |\{\text{adjacent side pairs in } S\}| + |\{\text{corners of } q
        \text{ off } S\}|

    with :math:`S` the sides of :math:`B` on :math:`q`. It equals the tables of
    :func:`~meshgdl.distributed.build_part` (tested), and costs :math:`O(12 \cdot 4^L)` for blocks of
    level :math:`L`, whatever the nside.

    Returns:
        dict with ``level`` (:math:`L`), ``owned``, ``halo`` (rows received) and ``sent`` (rows
        sent), each a ``[P]`` int64 array.
    """
    import healpy as hp

    from ..geometry.healpix import check_nside

    nside = check_nside(nside)
    order = nside.bit_length() - 1
    top = min(order, 7)  # the level search needs no finer blocks than 12 * 4**7 for P in the thousands
    parts, lv = nested_block_parts(np.arange(12 * 4 ** top), 2 ** top, num_parts, None, tolerance)
    s = nside >> lv
    blocks = np.arange(12 * 4 ** lv)
    part = parts  # the part of every block of level lv
    nbr = hp.get_all_neighbours(2 ** lv, blocks, nest=True).T  # [B, 8], -1 where three faces meet
    q = np.where(nbr >= 0, part[np.maximum(nbr, 0)], -1)
    # h[q, p]: pixels of part p in the halo of part q
    h = np.zeros((num_parts, num_parts), dtype=np.int64)
    for k in range(8):
        cand = q[:, k]
        eq = q == cand[:, None]
        first = ~eq[:, :k].any(1)  # count each (block, q) pair once
        valid = first & (cand >= 0) & (cand != part)
        side_count = eq[:, _SIDES].sum(1)
        pairs = sum(eq[:, a] & eq[:, b] for _, a, b in _CORNERS)
        corners = sum(eq[:, c] & ~eq[:, a] & ~eq[:, b] for c, a, b in _CORNERS)
        count = s * side_count - pairs + corners if s > 1 else np.ones(len(blocks), dtype=np.int64)
        np.add.at(h, (cand[valid], part[valid]), count[valid])
    owned = np.bincount(part, minlength=num_parts).astype(np.int64) * s * s
    return {"level": lv, "owned": owned, "halo": h.sum(1), "sent": h.sum(0)}
