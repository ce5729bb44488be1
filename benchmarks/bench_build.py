"""Time building framed graphs against trimesh and PyG on the same meshes, in one process.

    PYTHONPATH=. python benchmarks/bench_build.py            # ~30k, 300k and 1M faces
    PYTHONPATH=. python benchmarks/bench_build.py --quick    # ~30k and 300k only
    PYTHONPATH=. python benchmarks/bench_build.py --large    # the scaling series up to 5.2M faces

The first table times ``mesh_graph(vertices, faces, cache=False)`` against PyG's
``GenerateMeshNormals`` followed by ``FaceToEdge`` on the same arrays (float64 positions, int64
faces, tensors made inside both timings), for a series of sizes: the icospheres of subdivision 5 to 8
(20k to 1.3M faces) and the bunny subdivided 1 to 16 times (56k to 899k faces); ``--large`` adds
icosphere 9 (5.2M faces) and the bunny subdivided 64 times (3.6M faces). It prints both times, their
ratio and the time per face of each, so that linear growth shows as a constant column.

Meshes are icospheres (subdivisions 5, 7 and 8: 20k, 328k and 1.3M faces) and, when fetched
(``python -m meshgdl.datasets.fetch pymeshlab``), the pymeshlab bunny subdivided by trimesh
(56k, 225k and 899k faces), each written as a binary PLY to a temporary folder. For each the script
prints trimesh's load time (``trimesh.load(path)``, its default processing: the baseline) and the
raw read (``process=False``), the time of ``meshgdl.geometry.load_mesh(path, cache=False)`` (read
plus build), its time per face and ratio to the baseline, the peak resident memory of the build, and
the time of a second build served by the cache, from memory and from disk. Times are the best of
``--repeat`` runs. Then it times ``point_cloud_graph`` on 100k and 1M points of a sphere. Times on a
shared machine are noisy: compare the ratios, which are measured in the same process.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import subprocess

import numpy as np
import torch

from meshgdl.geometry.points import fibonacci_sphere


def best_time(fn, repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def peak_memory(code: str) -> float:
    """Peak resident memory of running ``code`` in a fresh interpreter, above its level after
    the imports, in bytes. tracemalloc would miss torch's allocations, and ``ru_maxrss`` carries
    the parent's peak across ``fork``; ``VmHWM`` belongs to the new process alone."""
    script = (
        "import resource, sys, numpy as np, torch\n"
        "torch.set_num_threads(1)\n"
        "from meshgdl.geometry import load_mesh, point_cloud_graph\n"
        "from benchmarks.bench_build import noisy_sphere\n"
        "base = int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize()\n"
        f"{code}\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(int(hwm) * 1024 - base)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=root)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return float(out.stdout.split()[-1])


def meshes(folder: str, quick: bool):
    import trimesh

    levels = (5, 7) if quick else (5, 7, 8)
    for s in levels:
        mesh = trimesh.creation.icosphere(subdivisions=s)
        yield f"icosphere {s}", mesh, folder
    try:
        from meshgdl.datasets.fetch import data_root

        path = data_root() / "pymeshlab" / "bunny.obj"
        if not path.exists():
            print(f"(bunny skipped: fetch it with `python -m meshgdl.datasets.fetch pymeshlab`)")
            return
        bunny = trimesh.load(path, process=False, force="mesh")
    except Exception as err:  # the benchmark still runs on icospheres
        print(f"(bunny skipped: {err})")
        return
    for times in (0, 1) if quick else (0, 1, 2):
        mesh = bunny
        for _ in range(times):
            mesh = mesh.subdivide()
        yield f"bunny x{4 ** times}", mesh, folder


def series(large: bool):
    """``(name, vertices, faces)`` from about 20k to 1.3M faces (5.2M with ``large``)."""
    import trimesh

    for s in (5, 6, 7, 8, 9) if large else (5, 6, 7, 8):
        mesh = trimesh.creation.icosphere(subdivisions=s)
        yield f"icosphere {s}", np.asarray(mesh.vertices), np.asarray(mesh.faces)
    try:
        from meshgdl.datasets.fetch import data_root

        mesh = trimesh.load(data_root() / "pymeshlab" / "bunny.obj", process=False, force="mesh")
    except Exception as err:  # the series still runs on icospheres
        print(f"(bunny skipped: {err}; `python -m meshgdl.datasets.fetch pymeshlab` fetches it)")
        return
    for times in range(4 if large else 3):
        yield f"bunny x{4 ** times}", np.asarray(mesh.vertices), np.asarray(mesh.faces)
        mesh = mesh.subdivide()


def bench_pyg(args):
    """mesh_graph against PyG's GenerateMeshNormals + FaceToEdge on the same arrays."""
    from torch_geometric.data import Data
    from torch_geometric.transforms import FaceToEdge, GenerateMeshNormals

    from meshgdl.geometry import mesh_graph

    def pyg(v, f):
        data = Data(pos=torch.from_numpy(v), face=torch.from_numpy(f).t().contiguous())
        return FaceToEdge()(GenerateMeshNormals()(data))

    print(f"{'mesh':<13} {'faces':>9} {'meshgdl s':>9} {'PyG s':>8} {'ratio':>6} {'us/face':>8} {'PyG us/face':>11}")
    for name, v, f in series(args.large):
        t_pyg = best_time(lambda: pyg(v, f), args.repeat)
        t_build = best_time(lambda: mesh_graph(v, f, cache=False), args.repeat)
        print(f"{name:<13} {len(f):>9,} {t_build:>9.3f} {t_pyg:>8.3f} {t_build / t_pyg:>6.2f} "
              f"{1e6 * t_build / len(f):>8.2f} {1e6 * t_pyg / len(f):>11.2f}", flush=True)
    print()


def bench_meshes(args):
    import trimesh

    from meshgdl import cache
    from meshgdl.geometry import load_mesh

    print(f"{'mesh':<13} {'faces':>9} {'trimesh':>8} {'raw read':>8} {'meshgdl':>8} {'us/face':>7} "
          f"{'ratio':>6} {'peak MB':>8} {'mem hit':>8} {'disk hit':>8}")
    with tempfile.TemporaryDirectory() as folder:
        cache.set_cache_dir(os.path.join(folder, "cache"))
        for name, mesh, folder in meshes(folder, args.quick):
            path = os.path.join(folder, name.replace(" ", "_") + ".ply")
            mesh.export(path, encoding="binary")
            faces = len(mesh.faces)
            t_trimesh = best_time(lambda: trimesh.load(path), args.repeat)
            t_raw = best_time(lambda: trimesh.load(path, process=False), args.repeat)
            t_build = best_time(lambda: load_mesh(path, cache=False), args.repeat)
            peak = peak_memory(f"load_mesh({path!r}, cache=False)")
            cache.clear_memory()
            load_mesh(path)  # fills both caches
            t_mem = best_time(lambda: load_mesh(path), args.repeat)
            cache.clear_memory()
            t_disk = best_time(lambda: (cache.clear_memory(), load_mesh(path)), args.repeat)
            print(f"{name:<13} {faces:>9,} {t_trimesh:>8.3f} {t_raw:>8.3f} {t_build:>8.3f} "
                  f"{1e6 * t_build / faces:>7.2f} {t_build / t_trimesh:>6.2f} {peak / 2**20:>8.0f} "
                  f"{t_mem:>8.3f} {t_disk:>8.3f}")
            sys.stdout.flush()
        cache.set_cache_dir(None)


def noisy_sphere(n: int) -> np.ndarray:
    """Fibonacci points moved off the unit sphere by 1 % noise, as a scan would be."""
    return fibonacci_sphere(n) * (1 + 0.01 * np.random.default_rng(0).standard_normal((n, 1)))


def bench_points(args):
    from scipy.spatial import cKDTree

    from meshgdl.geometry import point_cloud_graph

    print(f"\n{'points':>9} {'k':>3} {'kNN query':>9} {'meshgdl':>8} {'us/point':>8} {'ratio':>6} {'peak MB':>8}")
    sizes = (100_000,) if args.quick else (100_000, 1_000_000)
    for n in sizes:
        x = noisy_sphere(n)
        # baseline: the bare kNN query that every kNN graph needs
        t_knn = best_time(lambda: cKDTree(x).query(x, args.k + 1, workers=-1), args.repeat)
        t_build = best_time(lambda: point_cloud_graph(x, args.k, cache=False), args.repeat)
        peak = peak_memory(f"point_cloud_graph(noisy_sphere({n}), {args.k}, cache=False)")
        print(f"{n:>9,} {args.k:>3} {t_knn:>9.3f} {t_build:>8.3f} {1e6 * t_build / n:>8.2f} "
              f"{t_build / t_knn:>6.2f} {peak / 2**20:>8.0f}")
        sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the largest sizes")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing; the best is kept")
    parser.add_argument("--k", type=int, default=16, help="neighbours per point")
    parser.add_argument("--no-points", action="store_true", help="skip the point cloud timings")
    parser.add_argument("--large", action="store_true", help="add 3.6M and 5.2M faces to the PyG series")
    parser.add_argument("--only-pyg", action="store_true", help="only the series against PyG")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), numpy {np.__version__}")
    bench_pyg(args)
    if args.only_pyg:
        return
    bench_meshes(args)
    if not args.no_points:
        bench_points(args)


if __name__ == "__main__":
    main()
