"""A HEALPix sky split over processes: peak memory and time per step against one process, and the
scaling table of memory and halo bytes per process for nside 1024 to 8192 and P = 2 to 256.

    PYTHONPATH=. python benchmarks/bench_partition.py --measure 256          # quick
    PYTHONPATH=. python benchmarks/bench_partition.py --measure 1024 512     # the committed run
    PYTHONPATH=. python benchmarks/bench_partition.py --table-only           # the table alone

Each measurement runs in fresh processes, so that a peak resident memory belongs to one run: one
process with the whole graph (``healpix_graph``) and ``--threads`` torch threads, then ``--parts``
processes (gloo, one thread each, so that both runs use the same cores), each holding only its
part (``healpix_part``) and exchanging halos before the layer. A step is the forward and backward
pass of one GemConv layer, features float32, inputs requiring gradients so the backward exchange
runs too. The table comes from ``healpix_halo_sizes`` (closed form, equal to the partition tables
in the tests), with memory per process scaled from the measured bytes per node of one process.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# GemConv(scalars(4) -> scalars(4)): one sparse operator. Frequencies above 0 add operators (at nside
# 256 the peak above the graph is 0.90 GiB for this layer, 1.79 GiB with frequency-1 outputs), and
# only this layer lets nside 1024 split in two fit in 24 GiB.
C_IN, MAX_FREQ, COPIES = 4, 0, 4
TABLE_CHANNELS = 64  # float32 channels of a halo row in the sizing table (GemResNet's default hidden: 80)


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _layer():
    import torch

    from meshgdl import FieldType
    from meshgdl.nn import GemConv

    torch.manual_seed(0)
    return GemConv(FieldType.scalars(C_IN), FieldType.uniform(COPIES, MAX_FREQ))


def _steps(layer, x, graph, steps: int, sync=lambda: None) -> list:
    times = []
    for _ in range(steps + 1):  # the first step builds the cached sparse operators
        sync()
        start = time.perf_counter()
        y = layer(x, graph)
        y.square().sum().backward()
        sync()
        times.append(time.perf_counter() - start)
        x.grad = None
        layer.zero_grad()
    return times


def _single(nside: int, steps: int) -> dict:
    import torch

    from meshgdl.geometry import healpix_graph

    base = _peak()
    start = time.perf_counter()
    graph = healpix_graph(nside, validate=False)
    build = time.perf_counter() - start
    graph_peak = _peak()
    x = torch.randn(graph.num_nodes, C_IN, requires_grad=True)
    times = _steps(_layer(), x, graph, steps)
    return {"nodes": graph.num_nodes, "edges": graph.num_edges, "build_s": build, "first_step_s": times[0],
            "step_s": min(times[1:]), "peak_bytes": _peak(), "import_bytes": base, "graph_peak_bytes": graph_peak}


def _rank(rank: int, world: int, port: int, nside: int, steps: int, out: str) -> None:
    import datetime

    import torch
    import torch.distributed as dist

    from meshgdl.distributed import distribute, healpix_part

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(minutes=20))
    base = _peak()
    start = time.perf_counter()
    part = healpix_part(nside, world, rank)
    build = time.perf_counter() - start
    x = torch.randn(part.num_owned, C_IN, requires_grad=True)
    times = _steps(distribute(_layer()), x, part, steps, sync=dist.barrier)
    result = {"rank": rank, "owned": part.num_owned, "halo": part.num_halo, "sent": sum(part.send_counts),
              "local_edges": part.graph.num_edges, "build_s": build, "first_step_s": times[0],
              "step_s": min(times[1:]), "peak_bytes": _peak(), "import_bytes": base}
    Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


def _parted(nside: int, steps: int, parts: int) -> dict:
    import socket
    import tempfile

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_rank, args=(parts, port, nside, steps, out), nprocs=parts, join=True)
        return {"ranks": [json.loads(Path(out, f"rank{r}.json").read_text()) for r in range(parts)]}


def _run_worker(args) -> dict:
    """One measurement in a fresh interpreter, so that its peak memory is its own."""
    cmd = [sys.executable, __file__, "--worker", args[0], "--nside", str(args[1]), "--steps", str(args[2]),
           "--parts", str(args[3]), "--threads", str(args[4])]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _available() -> int:
    with open("/proc/meminfo") as f:
        info = dict(line.split(":", 1) for line in f)
    return int(info["MemAvailable"].split()[0]) * 1024


def _need(earlier: list, key: str, nside: int, parts: int) -> float | None:
    """Bytes a run at ``nside`` needs in all, scaled by pixels from the largest earlier run."""
    done = [r for r in earlier if "error" not in r[key] and "skipped" not in r[key]]
    if not done:
        return None
    last = max(done, key=lambda r: r["nside"])
    procs = [last[key]] if key == "single" else last[key]["ranks"]
    above = sum(p["peak_bytes"] - p["import_bytes"] for p in procs)
    imports = sum(p["import_bytes"] for p in procs) / len(procs)
    return above * (nside / last["nside"]) ** 2 + imports * (1 if key == "single" else parts)


def measure(nside: int, parts: int, steps: int, threads: int, earlier: list, margin: float = 0.9) -> dict:
    run = {"nside": nside, "parts": parts}
    for key in ("single", "parted"):
        need, have = _need(earlier, key, nside, parts), _available()
        if need is not None and need > margin * have:
            run[key] = {"skipped": f"needs about {need / 2**30:.0f} GiB (scaled from nside "
                                   f"{max(r['nside'] for r in earlier)}), {have / 2**30:.0f} GiB available"}
            continue
        run[key] = _run_worker((key, nside, steps, parts, threads))
    return run


def scaling_table(bytes_per_node: float, channels: int) -> list:
    """Rows of the sizing table: per process, the largest part's nodes, halo and bytes."""
    from meshgdl.distributed import healpix_halo_sizes

    rows = []
    for nside in (1024, 2048, 4096, 8192):
        npix = 12 * nside ** 2
        for p in (2, 4, 8, 16, 32, 64, 128, 256):
            sizes = healpix_halo_sizes(nside, p)
            worst = int((sizes["owned"] + sizes["halo"]).argmax())
            owned, halo, sent = (int(sizes[k][worst]) for k in ("owned", "halo", "sent"))
            rows.append({"nside": nside, "pixels": npix, "parts": p, "level": sizes["level"], "owned": owned,
                         "halo": halo, "max_halo": int(sizes["halo"].max()), "max_sent": int(sizes["sent"].max()),
                         "halo_bytes": int(sizes["halo"].max()) * channels * 4,
                         "memory_bytes": bytes_per_node * (owned + halo),
                         "memory_over_share": (owned + halo) / (npix / p),
                         "halo_over_sqrt": int(sizes["halo"].max()) / (npix / p) ** 0.5})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", type=int, nargs="*", default=[], help="nsides to measure (default: none)")
    parser.add_argument("--parts", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2, help="timed steps after the first")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the one-process run")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--margin", type=float, default=0.9,
                        help="run a case only if its scaled memory is under this fraction of the available memory")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "partition")
    parser.add_argument("--worker", choices=["single", "parted"], help=argparse.SUPPRESS)
    parser.add_argument("--nside", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(args.threads)
        if args.worker == "single":
            result = _single(args.nside, args.steps)
        else:
            result = _parted(args.nside, args.steps, args.parts)
        print(json.dumps(result))
        return
    runs = []
    for nside in sorted(args.measure):
        runs.append(measure(nside, args.parts, args.steps, args.threads, runs, args.margin))
        print(json.dumps(runs[-1]), flush=True)
    write_report(runs, args.out)


def _gib(b: float) -> str:
    return f"{b / 2**30:.2f}"


def write_report(runs: list, out: Path) -> None:
    from meshgdl.provenance import run_line, run_record

    ok = [r for r in runs if not {"error", "skipped"} & set(r["single"])]
    # bytes per node a process holds (above the imports), for the table: the finest measured split
    # sky, else the finest whole one
    per_node = None
    split = [r for r in runs if not {"error", "skipped"} & set(r["parted"])]
    if split:
        ranks = max(split, key=lambda r: r["nside"])["parted"]["ranks"]
        per_node = max((r["peak_bytes"] - r["import_bytes"]) / (r["owned"] + r["halo"]) for r in ranks)
    elif ok:
        single = max(ok, key=lambda r: r["nside"])["single"]
        per_node = (single["peak_bytes"] - single["import_bytes"]) / single["nodes"]
    rows = scaling_table(per_node or float("nan"), TABLE_CHANNELS)
    record = run_record()
    out.parent.mkdir(parents=True, exist_ok=True)
    layer = f"GemConv(scalars({C_IN}) -> {COPIES} x frequencies 0..{MAX_FREQ}) on float32 features"
    json_out = {"run": record, "layer": layer, "measured": runs, "bytes_per_node": per_node,
                "table_channels": TABLE_CHANNELS, "table": rows}
    out.with_suffix(".json").write_text(json.dumps(json_out, indent=1) + "\n")
    lines = ["# A HEALPix sky split over processes", "",
             f"One step: forward and backward of {layer}; peak resident memory of each process, above "
             "the memory after imports in brackets.", "",
             "| nside | pixels | edges | run | build s | step s | peak GiB per process (above imports) | halo rows |",
             "|---:|---:|---:|---|---:|---:|---|---:|"]
    for run in runs:
        s, p = run["single"], run["parted"]
        if {"error", "skipped"} & set(s):
            lines.append(f"| {run['nside']} | {12 * run['nside'] ** 2:,} | | 1 process | | | "
                         f"{'failed: ' + s['error'] if 'error' in s else 'not run: ' + s['skipped']} | |")
        else:
            lines.append(f"| {run['nside']} | {s['nodes']:,} | {s['edges']:,} | 1 process | {s['build_s']:.1f} | "
                         f"{s['step_s']:.2f} | {_gib(s['peak_bytes'])} "
                         f"({_gib(s['peak_bytes'] - s['import_bytes'])}) | 0 |")
        if {"error", "skipped"} & set(p):
            lines.append(f"| {run['nside']} | | | {run['parts']} processes | | | "
                         f"{'failed: ' + p['error'] if 'error' in p else 'not run: ' + p['skipped']} | |")
            continue
        ranks = p["ranks"]
        peaks = ", ".join(f"{_gib(r['peak_bytes'])} ({_gib(r['peak_bytes'] - r['import_bytes'])})" for r in ranks)
        lines.append(f"| {run['nside']} | | | {run['parts']} processes | {max(r['build_s'] for r in ranks):.1f} | "
                     f"{max(r['step_s'] for r in ranks):.2f} | {peaks} | {max(r['halo'] for r in ranks):,} |")
        if not {"error", "skipped"} & set(s):
            share = (s["peak_bytes"] - s["import_bytes"]) / run["parts"]
            worst = max(r["peak_bytes"] - r["import_bytes"] for r in ranks)
            lines.append(f"|  |  |  | ratio | | {max(r['step_s'] for r in ranks) / s['step_s']:.2f} | "
                         f"{worst / share:.2f} x (one process / {run['parts']}) | |")
    lines += ["", f"## Sizing table: per process, from the halo sizes ({TABLE_CHANNELS} float32 channels a row)", "",
              "Memory per process scales the measured bytes per held node of the largest split run "
              + (f"({per_node:,.0f} B, this layer) " if per_node else "") + "by the nodes a process holds (owned "
              "plus halo; halo nodes cost less, having no edges, so this errs high). Halo MiB is what the largest "
              "halo receives per layer in the forward pass; the backward pass sends as much back. The aims: "
              "halo / sqrt(pixels / P) stays flat, and (owned + halo) / (pixels / P) stays within 1.2.", "",
              "| nside | P | block level | owned | halo rows | sent rows | halo MiB / layer | memory GiB | "
              "(owned + halo) / share | halo / sqrt(pixels / P) |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['nside']} | {r['parts']} | {r['level']} | {r['owned']:,} | {r['max_halo']:,} | "
                     f"{r['max_sent']:,} | {r['halo_bytes'] / 2**20:.1f} | {_gib(r['memory_bytes'])} | "
                     f"{r['memory_over_share']:.4f} | {r['halo_over_sqrt']:.2f} |")
    lines += ["", run_line(record), ""]
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
