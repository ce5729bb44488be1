"""HEALPix maps to framed graphs and back: arrays and FITS files, masks, ``UNSEEN`` pixels.

A map becomes :func:`~meshgdl.geometry.healpix.healpix_graph` with the map's values as node
features ``x`` ``[N, F]`` (one channel per field, in the file's dtype), in the graph's pixel order;
:func:`graph_to_healpix` turns node features back into a map that healpy writes and plots, with
``UNSEEN`` where the graph has no node. The round trip is bit-exact.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..graph import FramedGraph
from .healpix import UNSEEN, healpix_graph, keep_from_mask


def read_healpix_fits(path, field=None):
    """Read the fields of a HEALPix FITS map: ``(maps [F, npix], nest, names)``, in the file's ordering.

    Args:
        path: a FITS file with a HEALPix binary table (``PIXTYPE = 'HEALPIX'``).
        field (optional): a column number or name, or a list of them (default: every column).
    """
    import healpy as hp
    from astropy.io import fits

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        with fits.open(path) as hdul:
            header = hdul[1].header if len(hdul) > 1 else None
    except OSError as err:
        raise ValueError(f"{path} is not a FITS file ({err})") from None
    if header is None or str(header.get("PIXTYPE", "")).strip().upper() != "HEALPIX":
        raise ValueError(f"{path} is not a HEALPix map: its first extension lacks PIXTYPE = 'HEALPIX'")
    ordering = str(header.get("ORDERING", "")).strip().upper()
    if ordering not in ("RING", "NESTED"):
        raise ValueError(f"{path} states ORDERING = {ordering!r}; HEALPix maps are RING or NESTED")
    partial = str(header.get("INDXSCHM", "")).strip().upper() == "EXPLICIT"
    names = [header[f"TTYPE{c}"] for c in range(1, header["TFIELDS"] + 1)]
    if partial:
        names = names[1:]  # the PIXEL column of a cut-sky file
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
    maps = hp.read_map(str(path), field=tuple(columns), nest=None, dtype=None, partial=partial)
    return np.atleast_2d(np.asarray(maps)), ordering == "NESTED", [names[c] for c in columns]


def _as_maps(data) -> tuple[np.ndarray, np.ndarray | None]:
    """``[F, npix]`` values and the pixels a masked array hides (or ``None``)."""
    hidden = None
    if isinstance(data, np.ma.MaskedArray):
        hidden = np.atleast_2d(np.ma.getmaskarray(data)).any(0)
        data = data.filled(UNSEEN)
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
                         f"got {npix} values (nearest: nside {max(nside, 1)}, {12 * max(nside, 1) ** 2} values)")
    return nside


def healpix_map_graph(map_or_path, *, field=None, nest=None, graph_nest: bool = True, mask=None,
                      dtype=torch.float32, validate=None, progress: bool = False) -> FramedGraph:
    """A HEALPix map as a framed graph, with the map's values as node features.

    Args:
        map_or_path: ``[npix]`` or ``[F, npix]`` array (numpy, masked array, tensor), a list of
            maps, or the path of a HEALPix FITS file.
        field (optional): FITS columns to read, by number or name (default: all).
        nest (bool, optional): the ordering of an array (default: ``False``, RING, healpy's
            default); a FITS file's own ``ORDERING`` is used and this must be ``None`` or agree.
        graph_nest (bool): order the graph's nodes nested (needed for pooling) or by ring.
            (default: ``True``)
        mask (optional): pixels to keep, in the map's ordering (boolean, ``True`` keeps; a 0/1
            map; a map with ``UNSEEN``; or a FITS path). Pixels where any field is ``UNSEEN`` are
            always dropped.
        dtype, validate, progress: as in :func:`~meshgdl.geometry.healpix_graph`; ``x`` keeps the
            map's dtype (integers become float64), so that the round trip is exact.

    Returns:
        The graph of :func:`~meshgdl.geometry.healpix_graph` with ``x`` :math:`[N, F]` and
        ``field_names``.
    """
    import healpy as hp

    if isinstance(map_or_path, (str, os.PathLike)):
        maps, file_nest, names = read_healpix_fits(map_or_path, field)
        if nest is not None and bool(nest) != file_nest:
            raise ValueError(f"{map_or_path} is {'NESTED' if file_nest else 'RING'} by its header, "
                             f"but nest={nest} was passed; leave nest=None for files")
        nest, hidden = file_nest, None
    else:
        if field is not None:
            raise ValueError("field selects FITS columns; index an array yourself")
        maps, hidden = _as_maps(map_or_path)
        names = [f"field{c}" for c in range(len(maps))]
        nest = bool(nest)
    nside = _nside_of(maps.shape[1])
    if not np.issubdtype(maps.dtype, np.floating):
        maps = maps.astype(np.float64)
    maps = maps.astype(maps.dtype.newbyteorder("="), copy=False)  # FITS is big-endian; torch wants native
    nan = np.isnan(maps).any(0)
    if nan.any():
        raise ValueError(f"the map holds NaN values at {int(nan.sum())} pixels (first: {int(nan.argmax())}); "
                         "set them to healpy.UNSEEN to drop them, or fill them")
    keep = ~(maps == np.asarray(UNSEEN, dtype=maps.dtype)).any(0)
    if hidden is not None:
        keep &= ~hidden
    if mask is not None:
        if isinstance(mask, (str, os.PathLike)):
            m, mask_nest, _ = read_healpix_fits(mask, 0)
            m = m[0]
            if mask_nest != nest:
                m = hp.reorder(m, n2r=True) if mask_nest else hp.reorder(m, r2n=True)
        else:
            m = mask
        keep &= keep_from_mask(m, maps.shape[1], "mask")
    if not keep.any():
        raise ValueError("every pixel of the map is UNSEEN or masked: nothing is left to build a graph on")
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

    Pixels without a node are ``healpy.UNSEEN``; values keep their dtype.
    """
    import healpy as hp

    for key in ("nside", "nest", "pixel"):
        if key not in graph:
            raise ValueError(f"the graph has no {key!r}: build it with healpix_graph or healpix_map_graph")
    x = graph.x if x is None else x
    if x is None:
        raise ValueError("the graph has no features x; pass x=")
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
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
    unless ``overwrite=True``."""
    import healpy as hp

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    maps = graph_to_healpix(graph, x, nest=nest)
    names = column_names or (graph.field_names if x is None and "field_names" in graph else None)
    hp.write_map(str(path), maps, nest=nest, overwrite=True, dtype=maps.dtype, column_names=names)
    return path
