"""Real meshes become framed graphs: a cortical surface and a scanned bunny with holes.

    python examples/mesh_to_graph.py [--out out/]

Prints each graph's summary and checks discrete Gauss-Bonnet (the face holonomies of a closed
surface sum to 2 pi times its Euler characteristic), then saves the graphs.
"""
import argparse
import math
from pathlib import Path

import torch

from meshgdl.datasets import data_path
from meshgdl.geometry import face_holonomy, load_mesh

MESHES = [
    ("brainspace", "conte69_32k_lh.gii", "left cortical hemisphere (conte69, 32k vertices)"),
    ("pymeshfix", "StanfordBunny.ply", "Stanford bunny scan with holes (50k vertices)"),
    ("pymeshlab", "bunny.obj", "watertight Stanford bunny (28k vertices)"),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="out", help="folder for the saved graphs (default: out/)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for source, name, title in MESHES:
        graph = load_mesh(data_path(source, name), dtype=torch.float64, progress=True)
        hol = face_holonomy(graph)
        chi = graph.num_nodes - graph.num_edges // 2 + graph.face.shape[1]
        print(f"\n{title}\n{graph.summary()}")
        print(f"  Gauss-Bonnet: sum of face holonomies / 2 pi = {float(hol.sum()) / (2 * math.pi):.10f}, chi = {chi}")
        target = out / (Path(name).stem + ".pt")
        graph.save(target, overwrite=True)
        print(f"  saved {target}")


if __name__ == "__main__":
    main()
