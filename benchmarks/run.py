"""The layer benchmark suite: meshgdl's layers against PyG's on the same graphs, in one process.

    python benchmarks/run.py [--quick] [--device cuda] [--graphs bunny,healpix64] [--out benchmarks/results]

For each graph and layer it measures forward and forward+backward time (median of repeats after a
warm-up), peak memory (CUDA: the allocator's peak; CPU: the peak resident size of a fresh process
per case), throughput in edges per second, and the bytes the layer must move at least (features in
and out, the edge list, the per-edge geometry it reads), so the distance to the memory-bandwidth
limit is visible. Every row gives its time as a ratio to GCNConv on the same graph, measured in the
same run. Writes ``<out>/<device>.md`` and ``<out>/<device>.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from meshgdl.provenance import run_line, run_record

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import GRAPHS, LAYERS, SMALL_ONLY, build_graph, build_layer, min_bytes  # noqa: E402


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(fn, device, repeats):
    fn()
    _sync(device)
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def time_layer(call, x, device, repeats: int, backward: bool = True) -> dict:
    """Median forward (no grad) and forward+backward seconds of ``call(x)``, and the peak bytes above
    the memory held before (CUDA: the allocator's peak; CPU: the growth of the peak resident size,
    so call it in a fresh process)."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()

    def forward():
        with torch.no_grad():
            call(x)

    def forward_backward():
        xx = x.detach().requires_grad_(True)
        call(xx).square().mean().backward()

    fwd = _time(forward, device, repeats)
    fwd_bwd = _time(forward_backward, device, repeats) if backward else float("nan")
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
    return {"forward_ms": fwd * 1e3, "forward_backward_ms": fwd_bwd * 1e3, "peak_bytes": peak}


def measure(graph_name: str, layer_name: str, device: str, repeats: int) -> dict:
    """Time one layer on one graph; called in a fresh process on CPU so peak memory is its own."""
    device = torch.device(device)
    graph = build_graph(graph_name).to(device)
    layer, x = build_layer(layer_name, graph)
    layer, x = layer.to(device), x.to(device)
    row = time_layer(lambda x: layer(x, graph), x, device, repeats)
    return {
        "graph": graph_name, "layer": layer_name, "nodes": graph.num_nodes, "edges": graph.num_edges, **row,
        "edges_per_s": graph.num_edges / (row["forward_backward_ms"] / 1e3),
        "min_bytes": min_bytes(layer_name, graph, x),
    }


def run_case(graph_name, layer_name, device, repeats):
    if device.startswith("cuda"):
        return measure(graph_name, layer_name, device, repeats)
    cmd = [sys.executable, __file__, "--case", graph_name, layer_name, "--device", device, "--repeats", str(repeats)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{layer_name} on {graph_name} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows) -> str:
    lines = ["| graph | layer | nodes | edges | fwd ms | fwd+bwd ms | x GCNConv | peak MiB | Medges/s | min MB moved | GB/s (fwd) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['graph']} | {r['layer']} | {r['nodes']:,} | {r['edges']:,} | {r['forward_ms']:.1f} | "
            f"{r['forward_backward_ms']:.1f} | {r['ratio_to_gcn']:.2f} | {r['peak_bytes'] / 2**20:.0f} | "
            f"{r['edges_per_s'] / 1e6:.1f} | {r['min_bytes'] / 1e6:.0f} | {r['min_bytes'] / r['forward_ms'] / 1e6:.1f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--graphs", default=",".join(GRAPHS))
    parser.add_argument("--layers", default=",".join(LAYERS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small graphs only, 3 repeats")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(*args.case, args.device, args.repeats)))
        return
    record = run_record()
    graphs = [g for g in args.graphs.split(",") if not args.quick or not GRAPHS[g]["large"]]
    repeats = 3 if args.quick else args.repeats
    rows = []
    for graph_name in graphs:
        for layer_name in args.layers.split(","):
            if GRAPHS[graph_name]["large"] and layer_name in SMALL_ONLY and not args.device.startswith("cuda"):
                print(f"skipped {layer_name} on {graph_name}: too slow for a CPU run (benchmarks/cases.py)")
                continue
            try:
                row = run_case(graph_name, layer_name, args.device, repeats)
            except (RuntimeError, ImportError) as err:
                print(f"skipped {layer_name} on {graph_name}: {str(err).strip().splitlines()[-1]}", flush=True)
                continue
            rows.append(row)
            print(f"{graph_name:>12} {layer_name:>18}  fwd {row['forward_ms']:9.1f} ms  fwd+bwd {row['forward_backward_ms']:9.1f} ms", flush=True)
    for r in rows:
        gcn = next((g for g in rows if g["graph"] == r["graph"] and g["layer"] == "GCNConv"), None)
        r["ratio_to_gcn"] = r["forward_backward_ms"] / gcn["forward_backward_ms"] if gcn else float("nan")
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu-{platform.machine()}-{torch.get_num_threads()}threads"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = name.replace(" ", "_")
    report = (f"# Layer benchmark on {name}\n\ntorch {torch.__version__}; ratios are fwd+bwd time over GCNConv's "
              f"on the same graph.\n\n{table(rows)}\n\n{run_line(record)}\n")
    (out / f"{stem}.md").write_text(report)
    (out / f"{stem}.json").write_text(json.dumps({"device": name, "torch": torch.__version__, "run": record, "rows": rows}, indent=1))
    print(report)


if __name__ == "__main__":
    main()
