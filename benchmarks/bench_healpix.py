"""HEALPix to graph: seconds and peak memory of ``healpix_graph``, against healpy's neighbour search.

    PYTHONPATH=. python benchmarks/bench_healpix.py                 # nside 64 .. 1024
    PYTHONPATH=. python benchmarks/bench_healpix.py --nside 64 256  # some
    PYTHONPATH=. python benchmarks/bench_healpix.py --threads 2     # the build on 2 threads

The floor is one ``healpy.get_all_neighbours`` call over all pixels, timed in the same process:
after one untimed run of each, build and floor alternate and the best of each counts (``--repeat``). Each nside runs in a fresh process, so that its peak resident memory (above the
memory after imports) belongs to it alone; the output is the graph's tensors. The aims: a build in
at most twice the floor's time, with a peak of at most twice the output's bytes. healpy's search
runs on one thread; the build runs its chunks on ``--threads`` threads (default 1, the fair
comparison).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _one(nside: int, repeats: int, threads: int) -> dict:
    import gc

    import healpy as hp
    import numpy as np
    import torch

    from meshgdl.geometry import healpix_graph

    torch.set_num_threads(threads)
    healpix_graph(2)  # warm the imports
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    pixels = np.arange(12 * nside**2)

    def build():
        graph = healpix_graph(nside, validate=False)
        out = sum(v.numel() * v.element_size() for v in graph.values() if isinstance(v, torch.Tensor))
        return graph.num_edges, out

    def floor():
        hp.get_all_neighbours(nside, pixels, nest=True)

    # one untimed run of each first (the peak is the build's own: nothing else has run yet), then
    # the two alternate, so that both meet the same warm memory and the same load; best of each
    edges, out = build()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    gc.collect()
    floor()
    times = {build: [], floor: []}
    for _ in range(repeats):
        for fn in (build, floor):
            start = time.perf_counter()
            fn()
            times[fn].append(time.perf_counter() - start)
            gc.collect()
    return {"nside": nside, "edges": edges, "build_s": min(times[build]), "floor_s": min(times[floor]),
            "peak_bytes": peak, "output_bytes": out}


def _aims(r: dict) -> str:
    """Which of the aims hold: time at most 2x the floor, peak at most 2x the output's bytes."""
    time_ok = r["build_s"] <= 2 * r["floor_s"]
    memory_ok = r["peak_bytes"] <= 2 * r["output_bytes"]
    return f"time {'met' if time_ok else 'missed'}, memory {'met' if memory_ok else 'missed'}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nside", type=int, nargs="*", default=[64, 128, 256, 512, 1024])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each; the best counts")
    parser.add_argument("--threads", type=int, default=1, help="threads of the build (default: 1)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(_one(args.one, args.repeat, args.threads)))
        return 0
    print(f"healpix_graph on {args.threads} thread(s), healpy on one")
    print(f"{'nside':>6} {'edges':>12} {'build s':>9} {'floor s':>9} {'ratio':>6} {'peak MB':>9} {'out MB':>8} {'peak/out':>8}  aims")
    for nside in args.nside:
        run = subprocess.run([sys.executable, __file__, "--one", str(nside), "--repeat", str(args.repeat),
                              "--threads", str(args.threads)],
                             capture_output=True, text=True, check=True)
        r = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"{r['nside']:>6} {r['edges']:>12,} {r['build_s']:>9.3f} {r['floor_s']:>9.3f} "
              f"{r['build_s'] / r['floor_s']:>6.2f} {r['peak_bytes'] / 2**20:>9.0f} {r['output_bytes'] / 2**20:>8.0f} "
              f"{r['peak_bytes'] / r['output_bytes']:>8.2f}  {_aims(r)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
