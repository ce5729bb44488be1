r"""Multi-order (NUNIQ) HEALPix maps, as ligo.skymap writes gravitational-wave sky maps, made flat.

A multi-order map is a list of cells of different orders (:math:`n_{side} = 2^o`), each named by
one integer, :math:`u = 4 \cdot 4^o + p` with :math:`p` the NESTED pixel at order :math:`o`.
Flattening to order :math:`O` gives a plain NESTED map of :math:`12 \cdot 4^O` pixels:

* a cell coarser than :math:`O` covers the :math:`4^{O-o}` pixels :math:`p\,4^{O-o} \ldots
  (p+1)\,4^{O-o}-1`. A density (a value per steradian, ``PROBDENSITY``, or any intensive value
  such as ``DISTMU``) is copied to each; an extensive value (``PROB``, probability per pixel) is
  divided by :math:`4^{O-o}`;
* cells finer than :math:`O` are merged into their parent :math:`p / 4^{o-O}`: densities by their
  area-weighted mean (``healpy.ud_grade`` in NESTED order), extensive values by their sum;
* pixels that no cell covers are ``UNSEEN``.
"""
from __future__ import annotations

import numpy as np

from .healpix import check_nside
from .healpix_mask import UNSEEN

_MAX_ORDER = 29
_EXTENSIVE_COLUMNS = ("PROB",)  # ligo.skymap's probability per pixel; every other column is per pixel area


def nuniq_to_nested(uniq) -> tuple[np.ndarray, np.ndarray]:
    r"""``(order, ipix)`` of NUNIQ cells: :math:`o = \lfloor \log_2(u / 4) / 2 \rfloor`,
    :math:`p = u - 4 \cdot 4^o` (NESTED), in exact integer arithmetic.

    Args:
        uniq: ``[M]`` integers.
    """
    u = np.asarray(uniq)
    if not np.issubdtype(u.dtype, np.integer):
        raise TypeError(f"NUNIQ cells are integers, got dtype {u.dtype}")
    u = u.astype(np.int64).reshape(-1)
    if len(u) and (u.min() < 4 or u.max() >= 16 << (2 * _MAX_ORDER)):
        bad = u[(u < 4) | (u >= 16 << (2 * _MAX_ORDER))][0]
        raise ValueError(f"{int(bad)} is not a NUNIQ cell: u = 4 * 4**order + ipix needs 4 <= u < 16 * 4**{_MAX_ORDER}")
    first = 4 << (2 * np.arange(_MAX_ORDER + 1, dtype=np.int64))  # 4 * 4**o, the first cell of each order
    order = np.searchsorted(first, u, side="right") - 1
    return order, u - first[order]


def flatten_nuniq(uniq, values, nside=None, extensive=False):
    r"""A multi-order (NUNIQ) map as a flat NESTED HEALPix map.

    Args:
        uniq: ``[M]`` NUNIQ cells (the ``UNIQ`` column of a ligo.skymap file).
        values: ``[M]`` or ``[F, M]`` values of the cells.
        nside (int, optional): resolution of the output (default: the finest order of the cells,
            which loses nothing).
        extensive (bool or list of bool): whether each field is extensive (a quantity per pixel,
            such as ``PROB``: split among children, summed over them) rather than a density
            (``PROBDENSITY``, per steradian: copied to children, averaged over them).
            (default: ``False``, densities)

    Returns:
        ``(maps, nside)``: ``[npix]`` or ``[F, npix]`` (as ``values``), NESTED, :math:`12\,n_{side}^2`
        pixels, in the values' float dtype (integers become float64); ``UNSEEN`` where no cell lies.
    """
    order, ipix = nuniq_to_nested(uniq)
    vals = np.asarray(values)
    one = vals.ndim == 1
    vals = np.atleast_2d(vals)
    if vals.ndim != 2 or vals.shape[1] != len(order):
        raise ValueError(f"values must be [M] or [F, M] with M = {len(order)} cells, got shape {list(np.shape(values))}")
    if len(order) == 0:
        raise ValueError("the multi-order map has no cells")
    flags = np.broadcast_to(np.asarray(extensive, dtype=bool), (len(vals),))
    dtype = vals.dtype if np.issubdtype(vals.dtype, np.floating) else np.dtype(np.float64)
    vals = vals.astype(dtype.newbyteorder("="), copy=False)
    top = int(order.max())
    target = top if nside is None else check_nside(nside).bit_length() - 1
    _check_disjoint(order, ipix, top)

    out = np.full((len(vals), 12 << (2 * target)), UNSEEN, dtype=vals.dtype)
    for o in np.unique(order):
        cells = order == o
        v, p = vals[:, cells], ipix[cells]
        if o <= target:  # each cell covers a run of k = 4**(target - o) output pixels
            k = 4 ** int(target - o)
            out.reshape(len(vals), -1, k)[:, p] = np.where(flags[:, None], v / k, v)[:, :, None]
    fine = order > target
    if fine.any():  # merge finer cells into their parents at the target order
        shift = 2 * (order[fine] - target)
        parent = ipix[fine] >> shift
        area = 0.25 ** (order[fine] - target)  # each cell's share of its parent, a power of two
        slots, at = np.unique(parent, return_inverse=True)
        covered = np.bincount(at, weights=area, minlength=len(slots))
        for f in range(len(vals)):
            v = vals[f, fine].astype(np.float64)
            total = np.bincount(at, weights=v if flags[f] else v * area, minlength=len(slots))
            out[f, slots] = total if flags[f] else total / covered
    return (out[0] if one else out), 1 << target


def _check_disjoint(order, ipix, top: int) -> None:
    """``ValueError`` unless the cells cover disjoint parts of the sphere."""
    shift = 2 * (top - order)
    start = ipix << shift
    end = (ipix + 1) << shift
    sort = np.argsort(start, kind="stable")
    overlap = np.flatnonzero(start[sort][1:] < end[sort][:-1])
    if len(overlap):
        a, b = sort[overlap[0]], sort[overlap[0] + 1]
        raise ValueError(f"the multi-order map's cells overlap: cell {a} (order {int(order[a])}, pixel "
                         f"{int(ipix[a])}) and cell {b} (order {int(order[b])}, pixel {int(ipix[b])})")


def read_nuniq_table(hdu, columns, nside=None, extensive=None) -> np.ndarray:
    """Columns of a multi-order FITS table (astropy, with a ``UNIQ`` column) as flat NESTED maps
    ``[F, npix]``.

    Args:
        hdu: the binary table.
        columns (list of str): the value columns to read.
        nside (int, optional): as in :func:`flatten_nuniq`.
        extensive (optional): ``True``/``False`` for every column, or the names of the extensive
            columns (default: ``PROB``, probability per pixel; every other column, such as
            ``PROBDENSITY``, ``DISTMU``, ``DISTSIGMA``, ``DISTNORM``, is a density or intensive).
    """
    if extensive is None or isinstance(extensive, (list, tuple, set)):
        chosen = {e.upper() for e in (_EXTENSIVE_COLUMNS if extensive is None else extensive)}
        flags = [c.upper() in chosen for c in columns]
    else:
        flags = [bool(extensive)] * len(columns)
    data = hdu.data
    uniq = next(c.name for c in hdu.columns if c.name.upper() == "UNIQ")
    values = np.stack([np.asarray(data[c]).reshape(len(data)) for c in columns])
    return flatten_nuniq(np.asarray(data[uniq]), values, nside=nside, extensive=flags)[0]
