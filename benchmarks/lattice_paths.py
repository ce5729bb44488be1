"""Speed of the two Wilson-loop paths: gathers along a lattice graph's edges against torch.roll on
the link tensor, for traced 2x2 loops of SU(2) fields; prints times and their ratio.

    PYTHONPATH=. python benchmarks/lattice_paths.py
"""
import time

import torch

from meshgdl import observables as obs
from meshgdl.geometry import lattice_graph, lattice_links


def best_of(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    torch.set_num_threads(1)
    for shape in [(8, 8), (32, 32), (8, 8, 8, 8)]:
        g = lattice_graph(shape, group="SU2", links="random")
        u = lattice_links(g).view(*shape, len(shape), 2, 2)
        t_graph = best_of(lambda: obs.traced_wilson_loops(g, 2))
        t_roll = best_of(lambda: obs.traced_wilson_loops(u, 2))
        print(f"{str(shape):14s} graph {t_graph * 1e3:8.2f} ms  roll {t_roll * 1e3:8.2f} ms  "
              f"graph/roll {t_graph / t_roll:5.2f}")


if __name__ == "__main__":
    main()
