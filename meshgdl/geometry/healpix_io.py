"""HEALPix maps to framed graphs and back: arrays and FITS files, masks, ``UNSEEN`` pixels.

A map becomes :func:`~meshgdl.geometry.healpix.healpix_graph` with the map's values as node
features ``x`` ``[N, F]`` (one channel per field, in the file's dtype), in the graph's pixel order;
:func:`graph_to_healpix` turns node features back into a map that healpy writes and plots, with
``UNSEEN`` where the graph has no node. The round trip is bit-exact. ``UNSEEN``, NaN and infinite
values never reach ``x`` (:mod:`~meshgdl.geometry.healpix_mask`); multi-order (NUNIQ) files are
flattened (:mod:`~meshgdl.geometry.healpix_nuniq`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..graph import FramedGraph
from .healpix import check_nside, healpix_graph
from .healpix_mask import UNSEEN, drop_bad_pixels, keep_from_mask


def read_healpix_fits(path, field=None, *, nside=None, extensive=None):
    """Read the fields of a HEALPix FITS map: ``(maps [F, npix], nest, names)``, in the file's ordering.

    Values are returned as stored: find ``UNSEEN`` pixels with
    :func:`~meshgdl.geometry.healpix_mask.unseen_pixels` (healpy's tolerance, any dtype). A
    multi-order map (``ORDERING = 'NUNIQ'``, a ``UNIQ`` column, as ligo.skymap writes) is
    flattened to a NESTED map (:func:`~meshgdl.geometry.flatten_nuniq`).

    Args:
        path: a FITS file with a HEALPix binary table (``PIXTYPE = 'HEALPIX'``).
        field (optional): a column number or name, or a list of them (default: every column; the
            ``PIXEL`` column of a cut-sky file and the ``UNIQ`` column are not fields).
        nside (int, optional): a multi-order map's resolution (default: its finest order); a flat
            map's own nside, if given, must agree.
        extensive (optional): which columns of a multi-order map are extensive (per pixel, split
            among children): ``True``, ``False``, or a list of names (default: ``["PROB"]``;
            densities such as ``PROBDENSITY`` are copied).
    """
    import healpy as hp
    from astropy.io import fits

    from .healpix_nuniq import read_nuniq_table

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        hdul = fits.open(path)
    except OSError as err:
        raise ValueError(f"{path} is not a FITS file ({err})") from None
    with hdul:
        header = hdul[1].header if len(hdul) > 1 else None
        if header is None or str(header.get("PIXTYPE", "")).strip().upper() != "HEALPIX":
            raise ValueError(f"{path} is not a HEALPix map: its first extension lacks PIXTYPE = 'HEALPIX'")
        ordering = str(header.get("ORDERING", "")).strip().upper()
        names = [header[f"TTYPE{c}"] for c in range(1, header["TFIELDS"] + 1)]
        if ordering == "NUNIQ" or (ordering not in ("RING", "NESTED") and "UNIQ" in (n.upper() for n in names)):
            if not any(n.upper() == "UNIQ" for n in names):
                raise ValueError(f"{path} states ORDERING = 'NUNIQ' but has no UNIQ column; its columns are {names}")
            names = [n for n in names if n.upper() != "UNIQ"]
            columns = [names[c] for c in _select_fields(path, names, field)]
            return read_nuniq_table(hdul[1], columns, nside=nside, extensive=extensive), True, columns
    if ordering not in ("RING", "NESTED"):
        raise ValueError(f"{path} states ORDERING = {ordering!r}; HEALPix maps are RING, NESTED or NUNIQ (multi-order)")
    partial = str(header.get("INDXSCHM", "")).strip().upper() == "EXPLICIT"
    if partial:
        names = names[1:]  # the PIXEL column of a cut-sky file
    columns = _select_fields(path, names, field)
    maps = np.atleast_2d(np.asarray(hp.read_map(str(path), field=tuple(columns), nest=None, dtype=None,
                                                partial=partial)))
    if nside is not None and check_nside(nside) != _nside_of(maps.shape[1]):
        raise ValueError(f"{path} is a map of nside {_nside_of(maps.shape[1])}, not {nside}: nside= resamples "
                         "multi-order (NUNIQ) maps only; resample a flat map with healpy.ud_grade")
    return maps, ordering == "NESTED", [names[c] for c in columns]


def _select_fields(path, names: list, field) -> list[int]:
    """Column numbers of ``field`` (a number, name, or list of them; ``None``: all) among ``names``."""
    fields = list(range(len(names))) if field is None else field if isinstance(field, (list, tuple)) else [field]
    columns = []
    for f in fields:
        if isinstance(f, str):
            if f not in names:
                raise ValueError(f"{path} has no field {f!r}; its fields are {names}")
            f = names.index(f)
        if not 0 <= int(f) < len(names):
            raise ValueError(f"{path} has fields 0..{len(names) - 1} ({names}), not {f}")
        columns.append(int(f))
    return columns


def _as_maps(data) -> tuple[np.ndarray, np.ndarray | None]:
    """``[F, npix]`` values and the pixels a masked array hides (or ``None``)."""
    hidden = None
    if isinstance(data, np.ma.MaskedArray):
        hidden = np.atleast_2d(np.ma.getmaskarray(data)).any(0)
        data = data.filled(0)  # not UNSEEN: integer and float16 maps cannot hold it
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    maps = np.atleast_2d(np.asarray(data))
    if maps.ndim != 2:
        raise ValueError(f"a map must be [npix] or [fields, npix], got shape {list(maps.shape)}")
    if not (np.issubdtype(maps.dtype, np.floating) or np.issubdtype(maps.dtype, np.integer)):
        raise TypeError(f"map values must be numbers, got dtype {maps.dtype}")
    return maps, hidden


def _nside_of(npix: int) -> int:
    nside = int(round((npix / 12) ** 0.5))
    if npix == 0 or 12 * nside * nside != npix or nside & (nside - 1):
        raise ValueError(f"a HEALPix map has 12 nside^2 values with nside a power of two; "
                         f"got {npix} values (nearest: nside {max(nside, 1)}, {12 * max(nside, 1) ** 2} values); "
                         "flatten a multi-order (NUNIQ) map first with "
                         "meshgdl.geometry.flatten_nuniq(uniq, values)")
    return nside


def healpix_map_graph(map_or_path, *, field=None, nest=None, graph_nest: bool = True, mask=None,
                      nonfinite: str = "raise", nside=None, extensive=None, dtype=torch.float32,
                      validate=None, progress: bool = False) -> FramedGraph:
    """A HEALPix map as a framed graph, with the map's values as node features.

    A pixel is dropped where any field is ``healpy.UNSEEN`` (healpy's tolerance, in any dtype:
    :func:`~meshgdl.geometry.healpix_mask.unseen_pixels`), where ``mask`` drops it, and, with
    ``nonfinite="mask"``, where any field is NaN or infinite; so ``x`` holds only finite values.

    Args:
        map_or_path: ``[npix]`` or ``[F, npix]`` array (numpy, masked array, tensor), a list of
            maps, or the path of a HEALPix FITS file (RING, NESTED, cut-sky, or multi-order NUNIQ).
        field (optional): FITS columns to read, by number or name (default: all).
        nest (bool, optional): the ordering of an array (default: ``False``, RING, healpy's
            default); a FITS file's own ``ORDERING`` is used and this must be ``None`` or agree.
        graph_nest (bool): order the graph's nodes nested (needed for pooling) or by ring.
            (default: ``True``)
        mask (optional): pixels to keep, in the map's ordering: boolean (``True`` keeps), numeric
            (``> 0`` keeps: a 0/1 map, or a map whose ``UNSEEN`` pixels drop; an apodised mask is
            thresholded at ``> 0`` with a warning, pass ``mask=apodised > 0.5`` to choose), a
            masked array (unmasked pixels keep), or a FITS path read the same way.
            (default: every pixel)
        nonfinite (str): NaN, ``+inf`` or ``-inf`` in a kept pixel ``"raise"`` a ``ValueError``
            that counts them, or ``"mask"`` drops those pixels. (default: ``"raise"``)
        nside (int, optional): resolution of a multi-order (NUNIQ) file (default: its finest order).
        extensive (optional): a multi-order file's extensive columns (see
            :func:`read_healpix_fits`; default: ``PROB``).
        dtype, validate, progress: as in :func:`~meshgdl.geometry.healpix_graph`; ``x`` keeps the
            map's dtype (integers become float64), so that the round trip is exact.

    Returns:
        The graph of :func:`~meshgdl.geometry.healpix_graph` with ``x`` :math:`[N, F]` and
        ``field_names``.
    """
    import healpy as hp

    if isinstance(map_or_path, (str, os.PathLike)):
        maps, file_nest, names = read_healpix_fits(map_or_path, field, nside=nside, extensive=extensive)
        if nest is not None and bool(nest) != file_nest:
            raise ValueError(f"{map_or_path} is {'NESTED' if file_nest else 'RING'} by its header, "
                             f"but nest={nest} was passed; leave nest=None for files")
        nest, hidden = file_nest, None
    else:
        if field is not None or nside is not None or extensive is not None:
            raise ValueError("field, nside and extensive apply to FITS files; for a multi-order array use "
                             "meshgdl.geometry.flatten_nuniq(uniq, values, nside) first")
        maps, hidden = _as_maps(map_or_path)
        names = [f"field{c}" for c in range(len(maps))]
        nest = bool(nest)
    nside = _nside_of(maps.shape[1])
    if not np.issubdtype(maps.dtype, np.floating):
        maps = maps.astype(np.float64)
    maps = maps.astype(maps.dtype.newbyteorder("="), copy=False)  # FITS is big-endian; torch wants native
    keep = np.ones(maps.shape[1], dtype=bool) if hidden is None else ~hidden
    if mask is not None:
        if isinstance(mask, (str, os.PathLike)):
            m, mask_nest, _ = read_healpix_fits(mask, 0, nside=nside)
            m = m[0]
            if mask_nest != nest:
                m = hp.reorder(m, n2r=True) if mask_nest else hp.reorder(m, r2n=True)
        else:
            m = mask
        keep &= keep_from_mask(m, maps.shape[1], "mask")
    keep = drop_bad_pixels(maps, keep, nonfinite)
    if not keep.any():
        raise ValueError("every pixel of the map is UNSEEN, non-finite or masked: nothing is left to build a graph on")
    if nest != graph_nest:  # keep[p] in the graph's ordering
        to_input = hp.nest2ring(nside, np.arange(len(keep))) if graph_nest else hp.ring2nest(nside, np.arange(len(keep)))
        keep = keep[to_input]
    graph = healpix_graph(nside, nest=graph_nest, mask=None if keep.all() else keep, dtype=dtype,
                          validate=validate, progress=progress)
    src = graph.pixel.numpy()
    if nest != graph_nest:
        src = hp.nest2ring(nside, src) if graph_nest else hp.ring2nest(nside, src)
    graph.x = torch.from_numpy(np.ascontiguousarray(maps[:, src].T))
    graph.field_names = list(names)
    return graph


def graph_to_healpix(graph: FramedGraph, x=None, nest: bool = False) -> np.ndarray:
    """Node features back to a full HEALPix map: ``[npix]`` for one channel, else ``[C, npix]``.

    Args:
        graph: a graph from :func:`healpix_map_graph` or :func:`~meshgdl.geometry.healpix_graph`.
        x (optional): ``[N]`` or ``[N, C]`` node features (default: ``graph.x``).
        nest (bool): ordering of the returned map (default: ``False``, RING, as healpy expects).

    Pixels without a node are ``healpy.UNSEEN``, exactly, in the values' dtype; values keep their
    dtype (integers become float64; float16 and bfloat16 become float32, which holds ``UNSEEN``).
    """
    import healpy as hp

    for key in ("nside", "nest", "pixel"):
        if key not in graph:
            raise ValueError(f"the graph has no {key!r}: build it with healpix_graph or healpix_map_graph")
    x = graph.x if x is None else x
    if x is None:
        raise ValueError("the graph has no features x; pass x=")
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        x = (x.float() if x.is_floating_point() and x.element_size() < 4 else x).numpy()
    x = np.asarray(x)
    if x.dtype.kind == "f" and x.dtype.itemsize < 4:
        x = x.astype(np.float32)  # float16 cannot hold UNSEEN (it would become -inf)
    if x.shape[0] != graph.num_nodes or x.ndim > 2:
        raise ValueError(f"x must be [N] or [N, C] with N = {graph.num_nodes}, got {list(x.shape)}")
    x2 = x.reshape(len(x), -1)
    pixel = graph.pixel.numpy()
    if bool(graph.nest) != bool(nest):
        pixel = hp.ring2nest(graph.nside, pixel) if nest else hp.nest2ring(graph.nside, pixel)
    out = np.full((x2.shape[1], 12 * graph.nside**2), UNSEEN, dtype=x2.dtype if x2.dtype.kind == "f" else np.float64)
    out[:, pixel] = x2.T
    return out[0] if x.ndim == 1 or x2.shape[1] == 1 else out


def write_healpix_map(graph: FramedGraph, path, x=None, nest: bool = False, overwrite: bool = False,
                      column_names=None) -> Path:
    """Write node features as a HEALPix FITS map (RING unless ``nest``); refuses to replace a file
    unless ``overwrite=True``. The map is written beside ``path`` and moved into place."""
    import healpy as hp

    from .._files import atomic_write, check_output

    path = check_output(path, overwrite)
    maps = graph_to_healpix(graph, x, nest=nest)
    names = column_names or (graph.field_names if x is None and "field_names" in graph else None)
    with atomic_write(path, overwrite) as tmp:  # a failed write leaves no partial FITS file
        hp.write_map(str(tmp), maps, nest=nest, overwrite=True, dtype=maps.dtype, column_names=names)
    return path
