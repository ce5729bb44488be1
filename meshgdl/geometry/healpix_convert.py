"""The ``meshgdl convert healpix`` and ``meshgdl plot`` commands, as functions and argparse wiring.

    meshgdl convert healpix IN.fits -o OUT.pt [--field I_STOKES ...] [--ring] [--mask M.fits]
                            [--nonfinite mask] [--nside 256]
    meshgdl plot OUT.pt -o map.png [--field 0]

Nothing heavy is imported at module level, so that building the command's parser stays fast.
"""
from __future__ import annotations

import argparse
from pathlib import Path

_DTYPES = ("float32", "float64")


def convert_healpix(inp, out, field=None, nest=None, mask=None, overwrite: bool = False,
                    progress: bool = True, dtype=None, nonfinite: str = "raise", nside=None):
    """Convert a HEALPix FITS map into a saved graph (:func:`~meshgdl.geometry.healpix_map_graph`).

    Args:
        inp: the FITS map (RING, NESTED or multi-order NUNIQ, as its header says).
        out: where to save the graph (:meth:`FramedGraph.save`, a ``.pt`` file).
        field (optional): FITS columns by number or name (default: all).
        nest (bool, optional): order the graph's nodes nested (default) or by ring (``False``).
        mask (optional): a mask FITS file or array, pixels to keep: boolean ``True`` or numeric
            ``> 0`` keeps (an apodised mask is thresholded at ``> 0``, with a warning; pass a
            boolean array such as ``apodised > 0.5`` for another threshold).
        overwrite (bool): replace ``out`` if it exists. (default: ``False``)
        progress (bool): show a progress bar. (default: ``True``)
        dtype: dtype of the geometry (features keep the file's dtype). (default: ``torch.float32``)
        nonfinite (str): ``"raise"`` on NaN or infinite values, or ``"mask"`` to drop those
            pixels. (default: ``"raise"``)
        nside (int, optional): resolution of a multi-order (NUNIQ) map (default: its finest order).

    Returns:
        The :class:`~meshgdl.FramedGraph` that was saved.
    """
    import torch

    from .._files import check_output
    from .healpix_io import healpix_map_graph
    from .mesh import _float_dtype

    dtype = _float_dtype(dtype or torch.float32)
    out = check_output(out, overwrite)  # before the work, not after it
    graph = healpix_map_graph(inp, field=field, graph_nest=True if nest is None else bool(nest), mask=mask,
                              nonfinite=nonfinite, nside=nside, dtype=dtype, progress=progress)
    graph.save(out, overwrite=overwrite)
    return graph


def plot_graph_map(graph_path, out_png, field=0, title=None, overwrite: bool = False, **mollview) -> Path:
    """A Mollweide view of a saved HEALPix graph's features through ``healpy.mollview``.

    Args:
        graph_path: a graph saved by :func:`convert_healpix` (or any HEALPix graph with ``x``).
        out_png: the image to write.
        field: channel number or field name. (default: ``0``)
        title (optional): the title (default: the file and field names).
        overwrite (bool): replace ``out_png`` if it exists. (default: ``False``)
        **mollview: passed to ``healpy.mollview`` (``unit``, ``min``, ``max``, ``cmap``, ...).
    """
    import healpy as hp

    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'meshgdl[plot]'") from None

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .._files import atomic_write, check_output
    from ..graph import FramedGraph
    from .healpix_io import graph_to_healpix

    out_png = check_output(out_png, overwrite)
    graph = FramedGraph.load(graph_path)
    missing = [key for key in ("nside", "nest", "pixel") if key not in graph]
    if missing:
        raise ValueError(f"{graph_path} is not a HEALPix graph (it has no {', '.join(missing)}); "
                         "draw graphs written by `meshgdl convert healpix` or healpix_map_graph")
    if "x" not in graph or graph.x is None:
        raise ValueError(f"{graph_path} holds no node features to plot (convert a map, not a bare sphere)")
    names = list(graph.field_names) if "field_names" in graph else [str(c) for c in range(graph.x.shape[-1])]
    if isinstance(field, str) and not field.isdigit():
        if field not in names:
            raise ValueError(f"{graph_path} has no field {field!r}; its fields are {names}")
        field = names.index(field)
    field = int(field)
    if not 0 <= field < graph.x.shape[-1]:
        raise ValueError(f"{graph_path} has fields 0..{graph.x.shape[-1] - 1} ({names}), not {field}")
    values = graph_to_healpix(graph, graph.x.reshape(graph.num_nodes, -1)[:, field])
    hp.mollview(values, title=title or f"{Path(graph_path).name}: {names[field]}", **mollview)
    fig = plt.gcf()  # mollview makes its own figure
    try:
        with atomic_write(out_png, overwrite) as tmp:
            fig.savefig(tmp, dpi=120)
    finally:
        plt.close(fig)
    return out_png


def plot_formats() -> set[str]:
    """File suffixes (without the dot) that :func:`plot_graph_map` can write: matplotlib's formats."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'meshgdl[plot]'") from None
    return set(FigureCanvasBase.get_supported_filetypes())


def add_convert_healpix_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``meshgdl convert healpix``; the handler is :func:`convert_healpix_command`."""
    parser.add_argument("input", help="HEALPix FITS map (RING, NESTED or multi-order NUNIQ, from its header)")
    parser.add_argument("-o", "--output", required=True, help="graph file to write (.pt)")
    parser.add_argument("--field", action="append", help="FITS column by number or name; repeat for several (default: all)")
    order = parser.add_mutually_exclusive_group()
    order.add_argument("--nest", dest="nest", action="store_true", default=None, help="nested node order (default)")
    order.add_argument("--ring", dest="nest", action="store_false", help="ring node order")
    parser.add_argument("--mask", help="mask FITS map: pixels > 0 are kept; 0, negative and UNSEEN dropped "
                        "(an apodised mask is thresholded at > 0, with a warning)")
    parser.add_argument("--nonfinite", choices=("raise", "mask"), default="raise",
                        help="NaN or +-inf values: stop with an error (default) or drop those pixels")
    parser.add_argument("--nside", type=int, help="resolution of a multi-order (NUNIQ) map "
                        "(default: its finest order)")
    parser.add_argument("--dtype", choices=_DTYPES, default="float32", help="dtype of the geometry (default: float32)")
    parser.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=convert_healpix_command)
    return parser


def convert_healpix_command(args: argparse.Namespace) -> int:
    fields = None if args.field is None else [int(f) if f.isdigit() else f for f in args.field]
    graph = convert_healpix(args.input, args.output, field=fields, nest=args.nest, mask=args.mask,
                            overwrite=args.force, progress=not args.quiet, dtype=args.dtype,
                            nonfinite=args.nonfinite, nside=args.nside)
    print(graph.summary())
    print(f"wrote {args.output}")
    return 0


def add_plot_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``meshgdl plot``; the handler is :func:`plot_command`."""
    parser.add_argument("graph", help="graph file written by `meshgdl convert healpix`")
    parser.add_argument("-o", "--output", required=True, help="image to write (.png)")
    parser.add_argument("--field", default="0", help="channel number or field name (default: 0)")
    parser.add_argument("--title", help="title (default: file and field names)")
    parser.add_argument("--min", type=float, help="lower end of the colour scale")
    parser.add_argument("--max", type=float, help="upper end of the colour scale")
    parser.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    parser.set_defaults(run=plot_command)
    return parser


def plot_command(args: argparse.Namespace) -> int:
    path = plot_graph_map(args.graph, args.output, field=args.field, title=args.title,
                          overwrite=args.force, min=args.min, max=args.max)
    print(f"wrote {path}")
    return 0
