"""The ``meshgdl`` command.

    meshgdl info FILE                      describe a mesh file or a saved graph
    meshgdl convert mesh IN -o OUT.pt      build a framed graph from a mesh file and save it
    meshgdl convert healpix IN.fits -o OUT.pt   a HEALPix map (FITS) as a graph with its values
    meshgdl plot OUT.pt -o map.png         a Mollweide view of a converted HEALPix graph
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

_DTYPES = {"float32", "float64"}


def _load_mesh(path, **kwargs):
    """The graph of a mesh file, and a line that says how many polygons were triangulated."""
    from .geometry import mesh_graph, read_mesh

    vertices, faces, info = read_mesh(path, return_info=True)
    graph = mesh_graph(vertices, faces, **kwargs)
    n, clipped = info["triangulated_polygons"], info["ear_clipped"]
    note = f"  triangulated {n:,} polygons ({n - clipped:,} as fans, {clipped:,} by ear clipping)" if n else ""
    return graph, note


def _describe(graph) -> str:
    """Summary plus the curvature check that says whether the mesh resolves its curvature."""
    from .geometry import face_holonomy

    lines = [graph.summary()]
    if "face" in graph and graph.face is not None:
        hol = face_holonomy(graph).double()
        chi = graph.num_nodes - graph.num_edges // 2 + graph.face.shape[1]
        lines.append(f"  holonomy    sum {float(hol.sum()):.6f} = 2 pi x {float(hol.sum()) / (2 * math.pi):.4f}"
                     f"  (closed surfaces: 2 pi x chi = 2 pi x {chi})")
        worst = float(hol.abs().max())
        lines.append(f"  max |face holonomy| {worst:.3g} rad"
                     + ("  (above pi/2: the mesh is too coarse for its curvature)" if worst > math.pi / 2 else ""))
    return "\n".join(lines)


def cmd_info(args) -> int:
    from .graph import FramedGraph

    path = Path(args.file)
    if not path.exists():
        print(f"meshgdl: no file at {path}", file=sys.stderr)
        return 2
    note = ""
    if path.suffix == ".pt":
        graph = FramedGraph.load(path)
    else:
        graph, note = _load_mesh(path, repair=args.repair, dtype="float64", progress=True)
    print(f"{path}")
    print(_describe(graph))
    if note:
        print(note)
    return 0


def cmd_convert_mesh(args) -> int:
    out = Path(args.output)
    if out.exists() and not args.force:
        print(f"meshgdl: {out} exists; pass --force to replace it", file=sys.stderr)
        return 2
    graph, note = _load_mesh(args.input, repair=args.repair, dtype=args.dtype, cache=False, progress=True)
    graph.save(out, overwrite=args.force)
    print(graph.summary())
    if note:
        print(note)
    print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meshgdl", description="Framed graphs for geometric deep learning.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log repairs and warnings")
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="describe a mesh file or a saved graph (.pt)")
    info.add_argument("file")
    info.add_argument("--repair", action="store_true", help="merge split duplicate vertices, drop unused ones")
    info.set_defaults(run=cmd_info)

    convert = sub.add_parser("convert", help="convert data into a framed graph file")
    kinds = convert.add_subparsers(dest="kind", required=True)
    mesh = kinds.add_parser("mesh", help="a mesh (OBJ, PLY, OFF with any polygons; STL, GIFTI)")
    mesh.add_argument("input")
    mesh.add_argument("-o", "--output", required=True, help="the .pt file to write")
    mesh.add_argument("--repair", action="store_true", help="merge split duplicate vertices, drop unused ones")
    mesh.add_argument("--dtype", choices=sorted(_DTYPES), default="float32")
    mesh.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    mesh.set_defaults(run=cmd_convert_mesh)
    from .geometry.healpix_convert import add_convert_healpix_arguments, add_plot_arguments

    add_convert_healpix_arguments(kinds.add_parser("healpix", help="a HEALPix map (FITS, RING or NESTED)"))
    add_plot_arguments(sub.add_parser("plot", help="draw a converted HEALPix graph (Mollweide view)"))
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="meshgdl: %(message)s")
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, FileExistsError, ImportError) as err:
        print(f"meshgdl: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
