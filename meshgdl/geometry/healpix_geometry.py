r"""The exact edge geometry of HEALPix, computed once per symmetry class of pixels.

East/north frames are invariant under every rotation about the polar axis, so the log maps and
transports of a pixel's edges, slot by slot in healpy's compass order, depend only on the pixel's
place up to the rotations that map the HEALPix grid onto itself near it:

* every ring is invariant under quarter turns, so a ring of ``4m`` pixels has ``m`` classes;
* rings :math:`n_{side} + 2 \ldots 3 n_{side} - 2` have every neighbour in an equatorial ring, where
  the grid is invariant under a turn by one pixel: one class per ring.

That leaves about :math:`n_{side}^2` classes out of :math:`12 n_{side}^2` pixels, and the mirror
:math:`z \to -z` pairs the southern classes with the northern ones. The geometry of one pixel per
northern class is computed in float64 (:func:`edge_geometry`), mirrored for the southern ones and
gathered for all others;
``tests/geometry/test_healpix.py`` holds the result equal to the generic tangent geometry at every
edge.
"""
from __future__ import annotations

import numpy as np

_CHUNK = 1 << 14


def ring_of(nside: int, ring_pixel: np.ndarray):
    """Ring number ``r`` (1 .. 4 nside - 1) and first RING pixel of that ring, for RING pixels."""
    p = np.asarray(ring_pixel, dtype=np.int64)
    npix, ncap = 12 * nside * nside, 2 * nside * (nside - 1)
    r = np.empty_like(p)
    north, south = p < ncap, p >= npix - ncap
    middle = ~(north | south)
    r[north] = (1 + _isqrt(1 + 2 * p[north])) // 2
    r[middle] = (p[middle] - ncap) // (4 * nside) + nside
    rs = (1 + _isqrt(2 * (npix - p[south]) - 1)) // 2
    r[south] = 4 * nside - rs
    return r, ring_start(nside, r)


def ring_start(nside: int, r: np.ndarray) -> np.ndarray:
    """First RING pixel of ring ``r``."""
    npix, ncap = 12 * nside * nside, 2 * nside * (nside - 1)
    rs = 4 * nside - r
    return np.where(r < nside, 2 * r * (r - 1),
                    np.where(r <= 3 * nside, ncap + (r - nside) * 4 * nside, npix - 2 * rs * (rs + 1)))


def ring_period(nside: int, r: np.ndarray) -> np.ndarray:
    """Pixels per symmetry class cycle of ring ``r``: a quarter of the ring, or 1 deep in the belt."""
    quarter = np.minimum(np.minimum(r, nside), 4 * nside - r)
    return np.where((r >= nside + 2) & (r <= 3 * nside - 2), 1, quarter)


def _isqrt(v: np.ndarray) -> np.ndarray:
    s = np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)
    s -= s * s > v  # float rounding, at most one step either way
    s += (s + 1) * (s + 1) <= v
    return s


def class_rows(nside: int, ring_pixel: np.ndarray) -> np.ndarray:
    """The row of :func:`class_table` that holds each RING pixel's geometry: the first pixel of
    its ring in its class, counted over the rings before it."""
    r, start = ring_of(nside, ring_pixel)
    period = ring_period(nside, r)
    # rows of the rings before ring r: each ring holds period(ring) rows
    per_ring = ring_period(nside, np.arange(1, 4 * nside, dtype=np.int64))
    first = np.cumsum(per_ring) - per_ring
    return first[r - 1] + (ring_pixel - start) % period


def nested_class_rows(nside: int) -> np.ndarray:
    """:func:`class_rows` of the NESTED pixels of base faces 0, 4 and 8, ``[3 nside^2]``: each base
    face is a quarter turn of the first face of its band (north, equator, south), which maps every
    ring onto itself by a multiple of its period, so NESTED pixel ``p`` takes row
    ``rows[(p // (4 nside^2)) nside^2 + p % nside^2]``."""
    import healpy as hp

    face = nside * nside
    first = (np.arange(3, dtype=np.int64)[:, None] * 4 * face + np.arange(face)).reshape(-1)
    return class_rows(nside, hp.nest2ring(nside, first))


def neighbours_into(nside: int, pixel: np.ndarray, nest: bool, out: np.ndarray) -> None:
    """healpy's 8 neighbours of ``pixel`` written into ``out`` ``[m, 8]`` (-1 where missing).

    healpy's neighbour ufunc writes each slot straight into its (strided) column; its public
    ``get_all_neighbours`` returns ``[8, m]``, stacked from the same slots, which would then be
    transposed into place: twice the writes."""
    import healpy as hp

    ufunc = getattr(hp.pixelfunc.pixlib, "_get_neighbors_nest" if nest else "_get_neighbors_ring", None)
    if ufunc is None or getattr(ufunc, "nout", 0) != 8:
        out[:] = hp.get_all_neighbours(nside, pixel, nest=nest).T
    else:
        ufunc(nside, pixel, *out.T)


# healpy's slots (SW, W, NW, N, NE, E, SE, S) under the mirror z -> -z, which swaps north and south
MIRROR_SLOT = np.array([2, 1, 0, 7, 6, 5, 4, 3])


def class_table(nside: int, workers: int = 1):
    """The log maps ``[R, 8, 2]`` and transports ``[R, 8]`` of the edges into one pixel of each
    class from its 8 neighbours, in healpy's order (junk where a neighbour is missing): ring by
    ring, the first ``period`` pixels of each ring (:func:`class_rows` finds a pixel's row).

    Only the northern rings and the equator are computed (on ``workers`` threads): the grid, healpy's
    pixel centres and its neighbour slots are symmetric under the mirror ``z -> -z`` (ring ``r`` to
    ring ``4 nside - r`` at the same longitude, slots :data:`MIRROR_SLOT`), which keeps the east axis
    and reverses the north one, so a southern class takes its mirror's table with the north
    components and the transports negated (both exact in floating point).
    """
    import healpy as hp

    north = np.arange(1, 2 * nside + 1, dtype=np.int64)
    south = np.arange(2 * nside + 1, 4 * nside, dtype=np.int64)
    period_n, period_s = ring_period(nside, north), ring_period(nside, south)
    reps_n = np.repeat(ring_start(nside, north), period_n) + _ramp(period_n)
    logmap = np.empty((len(reps_n) + int(period_s.sum()), 8, 2))
    transport = np.empty((len(logmap), 8))

    def rows(s):  # chunks keep the temporaries in cache
        chunk = reps_n[s:s + _CHUNK]
        nb = hp.get_all_neighbours(nside, chunk, nest=False).T
        xi = [c[:, None] for c in hp.pix2vec(nside, chunk, nest=False)]
        xj = hp.pix2vec(nside, np.maximum(nb, 0), nest=False)
        out = slice(s, s + len(chunk))
        logmap[out, :, 0], logmap[out, :, 1], transport[out] = edge_geometry(xi, xj)

    run_chunks(rows, range(0, len(reps_n), _CHUNK), workers)
    # ring r > 2 nside mirrors ring 4 nside - r, whose rows start at first[4 nside - r - 1]
    first = np.cumsum(period_n) - period_n
    mirror = np.repeat(first[4 * nside - south - 1], period_s) + _ramp(period_s)
    done = len(reps_n)
    logmap[done:] = logmap[mirror[:, None], MIRROR_SLOT]
    logmap[done:, :, 1] *= -1
    np.negative(transport[mirror[:, None], MIRROR_SLOT], out=transport[done:])
    return logmap, transport


def run_chunks(fn, starts, workers: int, bar=None) -> None:
    """``fn(s)`` for every chunk start, on ``workers`` threads (numpy and healpy release the GIL)."""
    if workers == 1 or len(starts) == 1:
        for s in starts:
            fn(s)
            if bar is not None:
                bar.update()
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(fn, starts):
            if bar is not None:
                bar.update()


def _ramp(period: np.ndarray) -> np.ndarray:
    """``0 .. period[k] - 1`` for each k, concatenated."""
    ends = np.cumsum(period)
    return np.arange(ends[-1]) - np.repeat(ends - period, period)


def edge_geometry(xi: np.ndarray, xj: np.ndarray):
    r"""Exact log map coordinates and transport of edges ``j -> i`` on the unit sphere, in east/north
    frames: unit vectors ``[..., 3]``, or their components ``(x, y, z)`` (broadcast) -> three arrays.

    With :math:`s = \sin\theta`, :math:`p = x_i x_j + y_i y_j` and :math:`q = x_i y_j - y_i x_j`,
    :math:`x_j` has coordinates :math:`(q / s_i,\; s_i z_j - z_i p / s_i)` in i's frame and
    :math:`x_i` has :math:`(-q / s_j,\; s_j z_i - z_j p / s_j)` in j's; their norm is
    :math:`\sin d_{ij}` and :math:`\cos d_{ij} = p + z_i z_j`. The log map is the first scaled to
    length :math:`d_{ij}`; the transport keeps the angle to the great circle:
    :math:`a_{ji} = \arg L_i - \arg L_j + \pi`.
    """
    # components as contiguous arrays: strided operands make every step several times slower
    (xi, yi, zi), (xj, yj, zj) = (
        [np.ascontiguousarray(c) for c in (np.moveaxis(v, -1, 0) if isinstance(v, np.ndarray) else v)]
        for v in (xi, xj))
    si, sj = np.sqrt(xi * xi + yi * yi), np.sqrt(xj * xj + yj * yj)  # hypot is several times slower
    p = xi * xj + yi * yj
    q = xi * yj - yi * xj
    with np.errstate(invalid="ignore", divide="ignore"):  # stand-ins for missing neighbours
        a, b = q / si, si * zj - zi * p / si  # x_j in i's frame
        a2, b2 = q / sj, sj * zi - zj * p / sj  # x_i in j's frame is (-a2, b2)
        sin_d = np.sqrt(a * a + b * b)
        scale = np.arctan2(sin_d, p + zi * zj) / sin_d
    # arg(-L_i conj(L_j)) with L_i = (a, b), L_j = (-a2, b2)
    transport = np.arctan2(a * b2 + b * a2, a * a2 - b * b2)
    return a * scale, b * scale, transport


def east_north_up(xyz, out: np.ndarray | None = None) -> np.ndarray:
    """Frames with rows east, north, up at unit vectors ``xyz`` ``[N, 3]`` (or its components
    ``(x, y, z)``): ``[N, 3, 3]``, written into ``out`` (any float dtype) when given."""
    x, y, z = xyz.T if isinstance(xyz, np.ndarray) else xyz
    s = np.sqrt(x * x + y * y)  # no pixel centre is on a pole
    cos_p, sin_p = x / s, y / s
    frame = np.empty((len(x), 3, 3)) if out is None else out
    frame[:, 0, 0], frame[:, 0, 1], frame[:, 0, 2] = -sin_p, cos_p, 0.0
    frame[:, 1, 0], frame[:, 1, 1], frame[:, 1, 2] = -z * cos_p, -z * sin_p, s
    frame[:, 2, 0], frame[:, 2, 1], frame[:, 2, 2] = x, y, z
    return frame
