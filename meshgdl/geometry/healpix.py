r"""HEALPix spheres as framed graphs.

Nodes are pixel centres on the unit sphere; each pixel receives an edge from each of its 8
neighbours (7 at the 24 pixels around the 8 points where only three base faces meet), in ``healpy.get_all_neighbours`` order
(SW, W, NW, N, NE, E, SE, S). Frames are east, north, up: ``e1 = (-sin phi, cos phi, 0)``,
``e2 = (-cos theta cos phi, -cos theta sin phi, sin theta)``, ``n = x``; no pixel centre lies on a
pole, so they are defined everywhere. Edges carry the exact geometry of the unit sphere:

.. math::
    \log_{x_i}(x_j) = \frac{d_{ij}}{\sin d_{ij}} (x_j \cdot e_{1,i},\; x_j \cdot e_{2,i}), \qquad
    d_{ij} = \operatorname{atan2}(|x_i \times x_j|, x_i \cdot x_j),

and Levi-Civita transport along the great circle, which keeps the angle to the geodesic: with
:math:`\beta_i` the direction of :math:`\log_{x_i}(x_j)` in i's frame and :math:`\beta_j` that of
:math:`\log_{x_j}(x_i)` in j's frame, :math:`a_{ji} = \beta_i - \beta_j + \pi`. This equals
:func:`~meshgdl.geometry.tangent.transport_angle` (the smallest rotation of the normals, tested).
The geometry is computed in float64 for one pixel per symmetry class
(:mod:`meshgdl.geometry.healpix_geometry`) and gathered chunk by chunk, so that nside 1024 (100M
edges) takes little more time than healpy's neighbour search and little more memory than its output.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..graph import FramedGraph
from .healpix_geometry import class_rows, class_table, east_north_up, neighbours_into, nested_class_rows, run_chunks
from .healpix_mask import UNSEEN, keep_from_mask  # noqa: F401  (UNSEEN: re-exported)

_CHUNK = 1 << 15  # pixels per chunk: the float64 temporaries of a chunk stay in cache
_VALIDATE_MAX_EDGES = 10_000_000


def check_nside(nside) -> int:
    """``nside`` as an int; ``ValueError`` unless it is a power of two (1, 2, 4, ..., 2**29)."""
    if isinstance(nside, bool) or not isinstance(nside, (int, np.integer)):
        raise TypeError(f"nside must be an integer power of two, got {nside!r}")
    nside = int(nside)
    if nside < 1 or nside & (nside - 1) or nside > 1 << 29:
        raise ValueError(f"nside must be a power of two between 1 and 2**29, got {nside}")
    return nside


def healpix_graph(nside: int, nest: bool = True, mask=None, *, dtype=torch.float32,
                  validate: bool | None = None, progress: bool = False) -> FramedGraph:
    r"""The HEALPix sphere of resolution ``nside`` as a :class:`~meshgdl.FramedGraph`.

    Args:
        nside (int): a power of two; the sphere has :math:`12\,n_{side}^2` pixels.
        nest (bool): node order: nested (``True``) or ring (``False``). (default: ``True``)
        mask (optional): pixels to keep, in the same ordering (see
            :func:`~meshgdl.geometry.healpix_mask.keep_from_mask`): a boolean array (``True``
            keeps), a masked array (unmasked pixels keep), or a numeric map (``> 0`` keeps; 0,
            negative values and ``UNSEEN`` drop; an apodised mask is thresholded at ``> 0`` with a
            warning). Edges to dropped pixels are dropped. (default: the full sky)
        dtype: floating dtype of positions, frames and edge attributes; the geometry is always
            computed in float64. (default: ``torch.float32``)
        validate (bool, optional): run :meth:`FramedGraph.validate` (default: only up to 10M edges,
            about nside 512, where it costs a few seconds).
        progress (bool): show a progress bar. (default: ``False``)

    Returns:
        A graph with ``pos`` :math:`[N, 3]`, ``frame`` :math:`[N, 3, 3]`, ``edge_index``
        :math:`[2, E]` (sorted by target, then in healpy's neighbour order), ``edge_logmap``
        :math:`[E, 2]`, ``edge_transport`` :math:`[E]`, ``node_area`` :math:`[N]`
        (:math:`4\pi / 12 n_{side}^2` each), ``pixel`` :math:`[N]` (the HEALPix pixel of each node),
        and ``nside``, ``nest``.
    """
    import healpy as hp
    from tqdm.auto import tqdm

    nside = check_nside(nside)
    npix = 12 * nside * nside
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch dtype such as torch.float32, got {dtype!r}")
    if mask is None:
        pixel = np.arange(npix, dtype=np.int64)
    else:
        keep = keep_from_mask(mask, npix)
        if not keep.any():
            raise ValueError("the mask drops every pixel: nothing is left to build a graph on")
        pixel = np.flatnonzero(keep)
    n = len(pixel)
    starts = range(0, n, _CHUNK)
    bar = tqdm(total=2 * len(starts), desc=f"healpix nside {nside}", unit="chunk", disable=not progress)
    _check_memory(n, nside, torch.empty(0, dtype=dtype).element_size())
    workers = max(1, torch.get_num_threads())

    # pass 1: neighbours as node ids, written where edge_index will live
    node_of = None
    if mask is not None:
        node_of = np.full(npix + 1, -1, dtype=np.int64)  # slot npix catches healpy's -1
        node_of[pixel] = np.arange(n)
    present = {}  # chunk start -> which of the 8 slots hold a neighbour (only chunks with gaps)

    def neighbours(s, e, gaps=True):
        """Chunk s's neighbours written from buf[e]; the number written. Without ``gaps`` (known to
        have all 8 neighbours) healpy writes them in place."""
        chunk = pixel[s:s + _CHUNK]
        m = len(chunk)
        if not gaps:
            neighbours_into(nside, chunk, nest, buf[e:e + 8 * m].reshape(m, 8))
            return 8 * m
        block = np.empty((m, 8), dtype=np.int64)  # chunk-sized: stays in cache
        neighbours_into(nside, chunk, nest, block)
        if node_of is not None:
            block = node_of[block]
        valid = block >= 0
        if valid.all():
            buf[e:e + 8 * m].reshape(m, 8)[:] = block
            return 8 * m
        present[s] = np.packbits(valid, axis=1)  # a bit a slot: masks leave gaps in most chunks
        k = int(valid.sum())
        buf[e:e + k] = block[valid]
        return k

    if mask is None:
        # a full sky misses 24 neighbours, all at corners of base faces: known before the search,
        # so every chunk knows where its edges start and the chunks run in parallel.
        # torch's memory, not numpy's: numpy asks for huge pages, whose faults here cost more
        buf = torch.empty(16 * n - 48, dtype=torch.long).numpy()
        missing = np.zeros(n // _CHUNK + 1, dtype=np.int64)
        corner = _face_corners(nside, nest)
        np.add.at(missing, corner // _CHUNK, (hp.get_all_neighbours(nside, corner, nest=nest) < 0).sum(0))
        before = np.cumsum(missing) - missing  # neighbours missing in the chunks before each
        offset = {s: 8 * s - int(before[k]) for k, s in enumerate(starts)}
        offset[n] = 8 * n - 24

        def full(s):
            lo, hi = offset[s], offset[min(s + _CHUNK, n)]
            if neighbours(s, lo, gaps=missing[s // _CHUNK] > 0) != hi - lo:
                raise AssertionError(f"healpy's neighbours of nside {nside} miss more than the 24 at face corners")

        run_chunks(full, starts, workers, bar)
        e = offset[n]
    else:  # numpy's, which can shrink in place below
        buf = np.empty(16 * n, dtype=np.int64)
        offset, e = {}, 0  # chunk start -> its first edge
        for s in starts:
            offset[s] = e
            e += neighbours(s, e)
            bar.update()
        offset[n] = e
        if 2 * e != len(buf):  # a partial sky: shrink in place (realloc), so that no slack is saved
            buf.resize(2 * e, refcheck=False)
    edge_index = torch.from_numpy(buf).view(2, e)

    # the geometry of one pixel per symmetry class, then gathered for every node
    table_logmap, table_transport = class_table(nside, workers)
    np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
    table_logmap = np.ascontiguousarray(table_logmap, dtype=np_dtype)
    table_transport = np.ascontiguousarray(table_transport, dtype=np_dtype)
    if nest:  # the rows of the three bands' first faces, shared by the other faces of each band
        band_rows, face_bits = nested_class_rows(nside), 2 * (nside.bit_length() - 1)
        rows_of = lambda chunk: band_rows[((chunk >> (face_bits + 2)) << face_bits) + (chunk & ((1 << face_bits) - 1))]  # noqa: E731
    else:
        rows_of = lambda chunk: class_rows(nside, chunk)  # noqa: E731
    pos = torch.empty(n, 3, dtype=dtype)
    frame = torch.empty(n, 3, 3, dtype=dtype)
    logmap = torch.empty(e, 2, dtype=dtype)
    transport = torch.empty(e, dtype=dtype)
    ps, fr, ei, lm, tr = pos.numpy(), frame.numpy(), edge_index.numpy(), logmap.numpy(), transport.numpy()

    def geometry(s):
        chunk = pixel[s:s + _CHUNK]
        m = len(chunk)
        xyz = hp.pix2vec(nside, chunk, nest=nest)
        for k in range(3):
            ps[s:s + m, k] = xyz[k]
        east_north_up(xyz, out=fr[s:s + m])
        lo, hi = offset[s], offset[min(s + _CHUNK, n)]
        rows = rows_of(chunk)
        if s not in present:  # no neighbour missing: gather straight into the outputs
            ei[1, lo:hi].reshape(m, 8)[:] = np.arange(s, s + m)[:, None]
            np.take(table_logmap, rows, axis=0, out=lm[lo:hi].reshape(m, 8, 2), mode="clip")
            np.take(table_transport, rows, axis=0, out=tr[lo:hi].reshape(m, 8), mode="clip")
        else:
            valid = np.unpackbits(present[s], axis=1).astype(bool)
            ei[1, lo:hi] = np.repeat(np.arange(s, s + m), valid.sum(1))
            # one gather of the present slots' table rows, straight into the outputs: boolean
            # indexing of a gathered [m, 8, 2] block took several times longer
            slot = (rows.astype(np.int64)[:, None] * 8 + np.arange(8))[valid]
            np.take(table_logmap.reshape(-1, 2), slot, axis=0, out=lm[lo:hi], mode="clip")
            np.take(table_transport.reshape(-1), slot, out=tr[lo:hi], mode="clip")

    run_chunks(geometry, starts, workers, bar)
    bar.close()

    graph = FramedGraph(
        pos=pos,
        frame=frame,
        edge_index=edge_index,
        edge_logmap=logmap,
        edge_transport=transport,
        node_area=torch.full((n,), 4 * math.pi / npix, dtype=dtype),
        pixel=torch.from_numpy(pixel),
        nside=nside,
        nest=bool(nest),
    )
    if validate or (validate is None and e <= _VALIDATE_MAX_EDGES):
        graph.validate()
    return graph


def _check_memory(n: int, nside: int, itemsize: int) -> None:
    """``MemoryError`` before any work when the graph cannot fit in this machine's memory."""
    import os

    per_pixel = 8 * (16 + 3 * itemsize) + 13 * itemsize + 8  # edges, then pos, frame, area, pixel
    need = int(1.1 * n * per_pixel)  # the builder's peak is about 1.1 times its output
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if need > have:
        raise MemoryError(f"a HEALPix graph of nside {nside} with {n:,} nodes needs about {need / 2**30:.0f} GiB, "
                          f"more than this machine's {have / 2**30:.0f} GiB; use a lower nside or a mask "
                          "(e.g. one base pixel at a time: nested pixels p // nside**2 == face)")


def _face_corners(nside: int, nest: bool) -> np.ndarray:
    """The pixels at the four corners of the 12 base faces, sorted (in the given ordering)."""
    import healpy as hp

    x = np.array([0, nside - 1, 0, nside - 1])
    y = np.array([0, 0, nside - 1, nside - 1])
    face = np.repeat(np.arange(12), 4)
    return np.unique(hp.xyf2pix(nside, np.tile(x, 12), np.tile(y, 12), face, nest=nest))


def healpix_rotation(graph_or_nside, k: int = 1, nest: bool = True, mask=None):
    r"""The rotation of the sphere by :math:`k \cdot 90^\circ` about the polar axis, an exact symmetry
    of HEALPix, as ``(perm, angles)``.

    The rotation :math:`g` turns longitudes by :math:`+k\pi/2`. ``perm[m]`` is the node at
    :math:`g^{-1} x_m`, so that a map rotated by :math:`g` is ``x[perm]`` and
    ``gauge_transform(permute_nodes(graph, perm), angles)`` equals ``graph``; ``angles[m]`` is the
    angle of :math:`g^{-1} e_{1,m}` in the frame of node ``perm[m]``. For the builder's east/north
    frames every angle is 0; a graph in another gauge gets the angles that undo it. A feature of
    frequency f rotates as ``field_type.transform(x[perm], angles)``.

    Args:
        graph_or_nside: a graph from :func:`healpix_graph` (any gauge), or an nside.
        k (int): quarter turns, any integer. (default: ``1``)
        nest, mask: ordering and kept pixels when an nside is given (as in :func:`healpix_graph`).

    Raises:
        ValueError: if the graph's pixels (its mask) are not invariant under the rotation.
    """
    import healpy as hp

    if isinstance(graph_or_nside, FramedGraph):
        graph = graph_or_nside
        nside, nest, pixel = graph.nside, graph.nest, graph.pixel.numpy()
    else:
        graph = None
        nside = check_nside(graph_or_nside)
        npix = 12 * nside * nside
        pixel = np.arange(npix) if mask is None else np.flatnonzero(keep_from_mask(mask, npix))
    nside2 = nside * nside
    nested = pixel if nest else hp.ring2nest(nside, pixel)
    # g^{-1} turns each base face to the previous one of its row (0-3 north, 4-7 equator, 8-11
    # south) and keeps the position inside the face, since the faces of a row are congruent
    face, inner = np.divmod(nested, nside2)
    face = (face // 4) * 4 + (face - k) % 4
    source = face * nside2 + inner
    if not nest:
        source = hp.nest2ring(nside, source)
    node = np.searchsorted(pixel, source)
    node = np.minimum(node, len(pixel) - 1)
    if not np.array_equal(pixel[node], source):
        raise ValueError(f"the kept pixels are not invariant under a rotation by {k} x 90 degrees about "
                         "the polar axis; use a full sky or a mask with that symmetry (e.g. a latitude cut)")
    perm = torch.from_numpy(node)
    if graph is None:
        return perm, torch.zeros(len(pixel), dtype=torch.float64)
    frame = graph.frame.double()
    c, s = math.cos(k * math.pi / 2), math.sin(k * math.pi / 2)
    g_inv = torch.tensor([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    e1 = frame[:, 0] @ g_inv.T
    src = frame[perm]
    angles = torch.atan2((e1 * src[:, 1]).sum(-1), (e1 * src[:, 0]).sum(-1))
    return perm, angles.to(graph.frame.dtype)


def __getattr__(name: str):
    # healpix_map_graph lives in healpix_io (which imports this module); the export table names this one
    if name == "healpix_map_graph":
        from .healpix_io import healpix_map_graph

        return healpix_map_graph
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
