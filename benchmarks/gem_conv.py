"""GemConv: the fast path (aggregate phases, weights once per node) against the per-edge-matrix
reference, forward and backward, on an icosphere. Prints times and ratios from one process.

    PYTHONPATH=. python benchmarks/gem_conv.py [--subdivisions 3] [--copies 8] [--max-frequency 2]
"""
import argparse
import time

import torch
import trimesh

from meshgdl.field_type import FieldType
from meshgdl.geometry import mesh_graph
from meshgdl.nn import GemConv
from meshgdl.nn.functional.gem_reference import gem_conv_reference


def timed(fn, repeat=3):
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--subdivisions", type=int, default=3)
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--max-frequency", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    graph = mesh_graph(trimesh.creation.icosphere(args.subdivisions), cache=False)
    ftype = FieldType.uniform(args.copies, args.max_frequency)
    conv = GemConv(ftype, ftype)
    x = torch.randn(graph.num_nodes, ftype.dim, requires_grad=True)

    def step(f):
        return lambda: f().square().sum().backward()

    fast = timed(step(lambda: conv(x, graph)))
    ref = timed(step(lambda: gem_conv_reference(conv, x, graph)), repeat=1)
    print(f"{graph.num_nodes} nodes, {graph.num_edges} edges, {ftype} -> {ftype} ({ftype.dim} channels)")
    print(f"fast      {fast * 1e3:9.1f} ms  forward+backward")
    print(f"reference {ref * 1e3:9.1f} ms  ({ref / fast:.1f}x the fast path)")


if __name__ == "__main__":
    main()
