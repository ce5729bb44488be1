"""GemConv: the fused path (eager and compiled) against PyG's GCNConv at the same width and against the
per-edge-matrix reference, forward and backward. Prints times and ratios from one process, best of
several interleaved rounds (a shared machine's load comes and goes).

    PYTHONPATH=. python benchmarks/gem_conv.py [--subdivisions 3] [--copies 8] [--max-frequency 2]
    PYTHONPATH=. python benchmarks/gem_conv.py --graph bunny --compile   # a graph of benchmarks/cases.py
"""
import argparse
import sys
import time
from pathlib import Path

import torch
import trimesh

from meshgdl.field_type import FieldType
from meshgdl.geometry import mesh_graph
from meshgdl.nn import GemConv
from meshgdl.nn.functional.gem_reference import gem_conv_reference


def best_time(fn, repeat=3):
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--subdivisions", type=int, default=3)
    parser.add_argument("--graph", help="a graph of benchmarks/cases.py (bunny, healpix64, ...) in place of the icosphere")
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--max-frequency", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(fullgraph=True) of the layer")
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.graph:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from cases import build_graph

        graph = build_graph(args.graph)
    else:
        graph = mesh_graph(trimesh.creation.icosphere(args.subdivisions), cache=False)
    ftype = FieldType.uniform(args.copies, args.max_frequency)
    conv = GemConv(ftype, ftype)
    x = torch.randn(graph.num_nodes, ftype.dim)

    import torch_geometric.nn as pyg

    gcn = pyg.GCNConv(ftype.dim, ftype.dim, cached=True)
    runs = {"fused": lambda xx: conv(xx, graph), "GCNConv": lambda xx: gcn(xx, graph.edge_index)}
    if args.compile:
        compiled = torch.compile(conv, fullgraph=True)
        runs["fused compiled"] = lambda xx: compiled(xx, graph)

    def step(f):
        return lambda: f(x.detach().requires_grad_(True)).square().sum().backward()

    times = {name: float("inf") for name in runs}
    for _ in range(args.rounds):
        for name, f in runs.items():
            times[name] = min(times[name], best_time(step(f)))
    print(f"{graph.num_nodes} nodes, {graph.num_edges} edges, {ftype} -> {ftype} ({ftype.dim} channels), "
          f"{torch.get_num_threads()} threads; forward+backward")
    for name, t in times.items():
        print(f"{name:15s} {t * 1e3:9.1f} ms  ({t / times['GCNConv']:.2f}x GCNConv, {t / times['fused']:.2f}x fused)")
    if not args.no_reference:
        ref = best_time(step(lambda xx: gem_conv_reference(conv, xx, graph)), repeat=1)
        print(f"{'reference':15s} {ref * 1e3:9.1f} ms  ({ref / times['fused']:.1f}x the fused path)")


if __name__ == "__main__":
    main()
