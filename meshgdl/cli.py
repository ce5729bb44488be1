"""The ``meshgdl`` command.

    meshgdl info FILE                      describe a mesh file or a saved graph
    meshgdl convert mesh IN -o OUT.pt      build a framed graph from a mesh file and save it
    meshgdl convert healpix IN.fits -o OUT.pt   a HEALPix map (FITS) as a graph with its values
    meshgdl plot OUT.pt -o map.png         a Mollweide view of a converted HEALPix graph
    meshgdl train CONFIG.toml              train from a config (--resume RUN, --print-config MODEL)
    meshgdl evaluate RUN                   loss and metrics of a trained run
    meshgdl predict RUN INPUT -o OUT       predictions in the input's format (FITS map, PLY)
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
from pathlib import Path

_DTYPES = {"float32", "float64"}
_MESH_SUFFIXES = (".obj", ".ply", ".off", ".stl", ".gii", ".gii.gz")
_GRAPH_SUFFIXES = (".pt",)
_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
# Library messages name keywords; on the command line the user knows them as flags.
_FLAGS = {"repair": "--repair", "overwrite": "--force"}


def _load_mesh(path, **kwargs):
    """The graph of a mesh file, and a line that says how many polygons were triangulated."""
    from .geometry import mesh_graph, read_mesh

    vertices, faces, info = read_mesh(path, return_info=True)
    graph = mesh_graph(vertices, faces, **kwargs)
    n, clipped = info["triangulated_polygons"], info["ear_clipped"]
    note = f"  triangulated {n:,} polygons ({n - clipped:,} as fans, {clipped:,} by ear clipping)" if n else ""
    return graph, note


def _describe(graph) -> str:
    """Summary, the connection, and discrete Gauss-Bonnet; when it fails, what in the mesh breaks it."""
    lines = [graph.summary()]
    if "face" in graph and graph.face is not None:
        lines += _curvature_check(graph)
    return "\n".join(lines)


def _curvature_check(graph) -> list[str]:
    import torch

    from .geometry import face_folds, gauss_bonnet
    from .geometry.halfedges import boundary_halfedges, mesh_edges, repeated_edges
    from .geometry.mesh_repair import pinch_vertices

    connection = getattr(graph, "connection", None) or "normal"  # graphs saved before the choice
    gb = gauss_bonnet(graph)
    tau = 2 * math.pi
    lines = [f"  connection  {connection}"]
    face = graph.face.t().cpu().numpy()
    halfedges = mesh_edges(face, graph.num_nodes)
    has_boundary = bool(boundary_halfedges(halfedges).any())
    total = f"sum of face holonomies {gb.faces:.6f}"
    if has_boundary:
        total += f" + boundary turning {gb.boundary:.6f}"
    # each face's holonomy carries the rounding of the transports' dtype (float32 by default)
    eps = torch.finfo(graph.edge_transport.dtype).eps
    ok = abs(gb.defect) < max(1e-6 * max(1.0, abs(gb.faces)), 4 * eps * math.pi * graph.face.shape[1])
    lines.append(f"  Gauss-Bonnet {total} = 2 pi x {(gb.faces + gb.boundary) / tau:.4f}; 2 pi x chi = 2 pi x {gb.chi}"
                 + ("  (holds)" if ok else f"  (FAILS by 2 pi x {gb.defect / tau:.4f})"))
    folds = face_folds(graph)
    folded = int((folds < 0).sum())
    if folded:
        worst = int(folds.argmin())
        lines.append(f"  folded faces {folded} (a face normal against a corner's vertex normal; worst: face "
                     f"{worst}, n_face . n_vertex = {float(folds[worst]):.3f})")
    if ok:
        return lines
    edges = repeated_edges(face, halfedges.repeated)
    pinched = pinch_vertices(face, graph.num_nodes)
    causes = []
    if len(edges):
        causes.append(f"{len(edges)} edges of more than two faces (first: {int(edges[0, 0])}-{int(edges[0, 1])})")
    if len(pinched):
        causes.append(f"{len(pinched)} pinch vertices, whose faces form more than one fan (first: vertex "
                      f"{int(pinched[0])})")
    if causes:
        lines.append("  cause: the mesh is not a manifold there, and the identity needs one: " + "; ".join(causes)
                     + " (repair the mesh, e.g. pymeshfix, or split those vertices)")
    elif connection == "normal" and folded:
        lines.append("  cause: the folded faces: the normal connection turns with the vertex normals, which "
                     "those faces contradict; connection='intrinsic' needs no normals and is exact here")
    else:
        lines.append("  cause: none found (no folded faces, no non-manifold edges or vertices)")
    return lines


def cmd_info(args) -> int:
    from .graph import FramedGraph

    path = Path(args.file)
    note = ""
    if path.suffix == ".pt":
        graph = FramedGraph.load(path)
    else:
        graph, note = _load_mesh(path, repair=args.repair, dtype="float64", progress=True,
                                 connection=args.connection)
    print(f"{path}")
    print(_describe(graph))
    if note:
        print(note)
    return 0


def cmd_convert_mesh(args) -> int:
    out = Path(args.output)
    graph, note = _load_mesh(args.input, repair=args.repair, dtype=args.dtype, cache=False, progress=True,
                             connection=args.connection)
    graph.save(out, overwrite=args.force)
    print(graph.summary())
    if note:
        print(note)
    print(f"wrote {out}")
    return 0


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """Reports a usage error as one line (argparse prints the whole usage and exits)."""

    def error(self, message):
        raise _UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="meshgdl", description="Framed graphs for geometric deep learning.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log repairs and warnings")
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="describe a mesh file or a saved graph (.pt)")
    info.add_argument("file")
    info.add_argument("--repair", action="store_true", help="merge split duplicate vertices, drop unused ones")
    _add_connection(info, "of a mesh file; a saved graph keeps its own")
    info.set_defaults(run=cmd_info)

    convert = sub.add_parser("convert", help="convert data into a framed graph file")
    kinds = convert.add_subparsers(dest="kind", required=True)
    mesh = kinds.add_parser("mesh", help="a mesh (OBJ, PLY, OFF with any polygons; STL, GIFTI)")
    mesh.add_argument("input")
    mesh.add_argument("-o", "--output", required=True, help="the .pt file to write")
    mesh.add_argument("--repair", action="store_true", help="merge split duplicate vertices, drop unused ones")
    mesh.add_argument("--dtype", choices=sorted(_DTYPES), default="float32")
    mesh.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    _add_connection(mesh, "of the graph")
    mesh.set_defaults(run=cmd_convert_mesh)
    from .geometry.healpix_convert import add_convert_healpix_arguments, add_plot_arguments

    add_convert_healpix_arguments(kinds.add_parser("healpix", help="a HEALPix map (FITS: RING, NESTED or multi-order NUNIQ)"))
    add_plot_arguments(sub.add_parser("plot", help="draw a converted HEALPix graph (Mollweide view)"))
    from .train.commands import add_arguments as add_train_arguments  # torch is imported only when run

    add_train_arguments(sub)
    return parser


def _add_connection(parser, what: str) -> None:
    parser.add_argument("--connection", choices=["intrinsic", "normal"], default="intrinsic",
                        help=f"discrete connection {what} (default: intrinsic; see docs/architecture.md)")


def _inputs(args) -> list[tuple[str, tuple[str, ...], str]]:
    """``(path, accepted suffixes, what it should be)`` for every input file of the command."""
    command = (args.command, getattr(args, "kind", None))
    if command == ("info", None):
        return [(args.file, _MESH_SUFFIXES + _GRAPH_SUFFIXES, "a mesh or a graph file")]
    if command == ("convert", "mesh"):
        return [(args.input, _MESH_SUFFIXES, "a mesh file")]
    if command == ("convert", "healpix"):
        masks = [(args.mask, _FITS_SUFFIXES, "a FITS mask")] if args.mask else []
        return [(args.input, _FITS_SUFFIXES, "a FITS map")] + masks
    if command == ("plot", None):
        return [(args.graph, _GRAPH_SUFFIXES, "a graph file")]
    if command == ("predict", None):
        return [(args.input, _FITS_SUFFIXES + _MESH_SUFFIXES, "a FITS map or a mesh file")]
    return []


def _check_paths(args) -> None:
    """Every check on files that can fail before the work starts; raises with the message to show."""
    from ._files import check_output

    for path, suffixes, what in _inputs(args):
        if not os.path.exists(path):
            raise FileNotFoundError(f"no file at {path}")
        if os.path.isdir(path):
            raise IsADirectoryError(f"{path} is a folder; give {what}")
        if not path.lower().endswith(suffixes):
            raise ValueError(f"{path} does not end in {', '.join(suffixes)}; give {what}")
    output = None if args.command == "train" else getattr(args, "output", None)  # train's is a run folder
    if output is None:
        return
    check_output(output, overwrite=args.force)
    if args.command == "plot":
        from .geometry.healpix_convert import plot_formats

        suffix = Path(output).suffix.lower().lstrip(".")
        if suffix not in plot_formats():
            raise ValueError(f"cannot draw into {output}: give an image file ({', '.join(sorted(plot_formats()))})")
    if not os.access(Path(output).parent, os.W_OK):
        raise PermissionError(f"cannot write in {Path(output).parent} (permission denied)")


def _one_line(err: BaseException) -> str:
    """The error as one line, with library keywords (``repair=True``) read as the command's flags."""
    text = " ".join(str(err).split()) or type(err).__name__
    return re.sub(r"\b(\w+)=True(?: \(--[\w-]+\))?",
                  lambda m: _FLAGS.get(m.group(1), m.group(0)), text)


def _close_progress_bars() -> None:
    """End the progress bars that an error cut short, so that the message starts its own line."""
    tqdm = sys.modules.get("tqdm.std")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()


def main(argv=None) -> int:
    """Run the command; every error is one line on stderr and exit code 2 (130 if interrupted).

    Files are checked before any work starts, and outputs are written beside their destination and
    moved into place, so that a failed or interrupted command leaves no partial file.
    """
    verbose = False
    try:
        args = build_parser().parse_args(argv)
        verbose = args.verbose
        logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="meshgdl: %(message)s")
        _check_paths(args)
        return args.run(args)
    except KeyboardInterrupt:
        _close_progress_bars()
        print("meshgdl: interrupted", file=sys.stderr)
        return 130
    except (_UsageError, ValueError, OSError, ImportError) as err:
        _close_progress_bars()
        print(f"meshgdl: {_one_line(err)}", file=sys.stderr)
        return 2
    except Exception as err:  # a bug or a library's surprise: still one line, unless asked for more
        _close_progress_bars()
        if verbose:
            import traceback

            traceback.print_exc()
        hint = "" if verbose else " (rerun as `meshgdl -v ...` for the traceback)"
        print(f"meshgdl: unexpected {type(err).__name__}: {_one_line(err)}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
