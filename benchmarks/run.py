"""The layer benchmark suite: meshgdl's layers against PyG's on the same graphs, in one process.

    python benchmarks/run.py [--quick] [--device cuda] [--graphs bunny,healpix64] [--out benchmarks/results]

For each graph and layer it measures forward and forward+backward time (median of repeats after a
warm-up), peak memory (CUDA: the allocator's peak; CPU: the peak resident size of a fresh process
per case) and throughput in edges per second. Every row gives its time as a ratio to GCNConv on
the same graph, measured in the same run.

A second table places each layer on the roofline (``benchmarks/roofline.py`` says how the work is
counted): the flops and the least bytes of each pass, the GFLOP/s and GB/s reached, and these as
fractions of what the machine reaches in the same run on ``torch.mm`` of the layer's own dense
shapes and on ``Tensor.copy_`` of a buffer of the bytes moved (both timed once per graph, in this
process). For the fused GemConv the sparse aggregation is also timed alone, which splits the
layer's time: the dense part's GFLOP/s as a fraction of ``torch.mm`` (aim: at least 50 %) and the
sparse part's GB/s as a fraction of the copy (aim: at least 30 %). Writes ``<out>/<device>.md``
and ``<out>/<device>.json``.
"""
from __future__ import annotations

import argparse
import json
import math
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
from cases import GRAPHS, LAYERS, SMALL_ONLY, build_graph, build_layer  # noqa: E402
from roofline import Baselines, dense_part, layer_work, roofline, sparse_part  # noqa: E402


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _samples(fns, device, repeats):
    """Seconds of each call of each of ``fns``, taken in turn ``repeats`` times after a warm-up, so
    that the machine's load drifts alike over all of them."""
    for fn in fns:
        fn()
    _sync(device)
    samples = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, samples):
            t0 = time.perf_counter()
            fn()
            _sync(device)
            out.append(time.perf_counter() - t0)
    return samples


def _time(fn, device, repeats):
    return statistics.median(_samples([fn], device, repeats)[0])


def _best(fn, device, repeats):
    """The machine's best over at least 5 repeats: a baseline of what it reaches, under less noise."""
    return min(_samples([fn], device, max(repeats, 5))[0])


def _passes(call, x):
    def forward():
        with torch.no_grad():
            call(x)

    def forward_backward():
        xx = x.detach().requires_grad_(True)
        call(xx).square().mean().backward()
    return forward, forward_backward


def time_passes(call, x, device, repeats: int, backward: bool = True) -> tuple[float, float]:
    """Median seconds of ``call(x)`` without grad, and of it with the backward of a square loss."""
    forward, forward_backward = _passes(call, x)
    fwd = _time(forward, device, repeats)
    return fwd, _time(forward_backward, device, repeats) if backward else float("nan")


def time_split(parts: dict, x, device, repeats: int) -> dict:
    """Median ms of each ``parts[name](x)`` (``sparse``, ``dense``) alone, timed in turn, without
    grad and with a backward pass from a fixed output gradient (a loss over the sparse part's wide
    output would cost as much as a sparse product)."""
    out = {}
    names = list(parts)
    with torch.no_grad():
        grads = [torch.randn_like(parts[n](x)) for n in names]

    def passes(f, gy):
        def forward():
            with torch.no_grad():
                f(x)

        def forward_backward():
            f(x.detach().requires_grad_(True)).backward(gy)
        return forward, forward_backward

    timers = [passes(parts[n], g) for n, g in zip(names, grads)]
    for i, p in enumerate(("forward", "forward_backward")):
        samples = _samples([t[i] for t in timers], device, repeats)
        for n, ts in zip(names, samples):
            out[f"{n}_{p}_ms"] = statistics.median(ts) * 1e3
    return out


def _resident_peak_reset() -> int | None:
    """Reset this process's peak resident size to its current size (Linux: ``clear_refs`` 5) and
    return the current size in bytes; ``None`` where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_bytes("VmRSS")
    except OSError:
        return None


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {field}")


def time_layer(call, x, device, repeats: int, backward: bool = True) -> dict:
    """Median forward (no grad) and forward+backward seconds of ``call(x)``, and the peak bytes above
    the memory held before (CUDA: the allocator's peak; CPU: the peak resident size above the size
    held before, the peak reset first where Linux allows it, so that the graph's build does not
    count; call it in a fresh process)."""
    # the graph's build may have peaked higher than the layer will: measure from a reset peak
    resident = _resident_peak_reset() if device.type == "cpu" else None
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    fwd, fwd_bwd = time_passes(call, x, device, repeats, backward)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    elif resident is not None:
        peak = _status_bytes("VmHWM") - resident
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
    work = layer_work(layer_name, layer, graph, x)
    row = {
        "graph": graph_name, "layer": layer_name, "nodes": graph.num_nodes, "edges": graph.num_edges, **row,
        "edges_per_s": graph.num_edges / (row["forward_backward_ms"] / 1e3),
        "min_bytes": work.bytes_fwd, **work.as_dict(),
    }
    sparse = sparse_part(layer_name, layer, graph)
    if sparse is not None:  # timed after the peak memory, which it would not raise anyway
        parts = {"sparse": sparse, "dense": dense_part(layer_name, layer, graph, x)}
        row.update(time_split(parts, x, device, repeats))
    return row


def run_case(graph_name, layer_name, device, repeats):
    if device.startswith("cuda"):
        return measure(graph_name, layer_name, device, repeats)
    cmd = [sys.executable, __file__, "--case", graph_name, layer_name, "--device", device, "--repeats", str(repeats)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{layer_name} on {graph_name} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows) -> str:
    lines = ["| graph | layer | nodes | edges | fwd ms | fwd+bwd ms | x GCNConv | peak MiB | Medges/s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['graph']} | {r['layer']} | {r['nodes']:,} | {r['edges']:,} | {r['forward_ms']:.1f} | "
            f"{r['forward_backward_ms']:.1f} | {r['ratio_to_gcn']:.2f} | {r['peak_bytes'] / 2**20:.0f} | "
            f"{r['edges_per_s'] / 1e6:.1f} |")
    return "\n".join(lines)


def _pair(r, key, fmt, scale=1.0):
    """``fwd / fwd+bwd`` of ``r[key_fwd]`` and ``r[key_fwd_bwd]`` in one cell; ``-`` where absent."""
    vals = [r.get(f"{key}_{p}") for p in ("fwd", "fwd_bwd")]
    return " / ".join("-" if v is None or v != v else format(v * scale, fmt) for v in vals)


def roofline_table(rows) -> str:
    """Each cell is forward / forward+backward."""
    lines = ["| graph | layer | GFLOP | min MB | GFLOP/s | % of mm | GB/s | % of copy | dense % of mm | sparse % of copy |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['graph']} | {r['layer']} | {_pair(r, 'flops', '.2f', 1e-9)} | {_pair(r, 'bytes', '.0f', 1e-6)} | "
            f"{_pair(r, 'gflops', '.1f')} | {_pair(r, 'frac_mm', '.0f', 100)} | {_pair(r, 'gbs', '.2f')} | "
            f"{_pair(r, 'frac_copy', '.0f', 100)} | {_pair(r, 'dense_frac_mm', '.0f', 100)} | "
            f"{_pair(r, 'sparse_frac_copy', '.0f', 100)} |")
    return "\n".join(lines)


def baseline_lines(baselines: dict) -> str:
    """One line a graph: the range of each baseline's rate over the shapes and sizes timed."""
    lines = []
    for graph, b in baselines.items():
        mm = [2 * math.prod(int(v) for v in shape.split("x")) / t["forward_ms"] / 1e6 for shape, t in b["mm"].items()]
        copy = {int(nbytes): 2 * int(nbytes) / ms / 1e6 for nbytes, ms in b["copy_ms"].items()}
        lines.append(f"- {graph}: torch.mm {min(mm):.1f}-{max(mm):.1f} GFLOP/s forward over {len(mm)} shapes; "
                     f"copy_ {min(copy.values()):.1f}-{max(copy.values()):.1f} GB/s (read + write) over buffers of "
                     f"{min(copy) / 1e6:.0f}-{max(copy) / 1e6:.0f} MB" if mm and copy else f"- {graph}: none timed")
    return "\n".join(lines)


ROOFLINE_NOTE = (
    "Each cell is forward / forward+backward. Work and least bytes are counted from each layer's "
    "algorithm (`benchmarks/roofline.py`); % of mm compares GFLOP/s with `torch.mm` on the layer's own "
    "dense shapes, % of copy compares GB/s with `Tensor.copy_` of a buffer of the bytes moved, both timed "
    "in this run. For the fused GemConv the sparse aggregation (`gem_aggregate`) and the dense part (the "
    "layer's update on a fixed aggregate) are each timed alone from a fixed output gradient: aims are dense >= 50 % "
    "of mm and sparse >= 30 % of copy, the sparse bytes being what its CSR products move (operator, input, "
    "product). GemConv_K2_plain is counted with the fused path's work, the same linear map.")


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
    rows, baselines = [], {}
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
        # the machine's own rates, in this process right after the graph's cases, once for each
        # shape and size its rows need
        base = Baselines(lambda fn: _best(fn, torch.device(args.device), repeats), args.device)
        for r in rows:
            if r["graph"] == graph_name:
                r.update(roofline(r, base))
        baselines[graph_name] = base.record()
    for r in rows:
        gcn = next((g for g in rows if g["graph"] == r["graph"] and g["layer"] == "GCNConv"), None)
        r["ratio_to_gcn"] = r["forward_backward_ms"] / gcn["forward_backward_ms"] if gcn else float("nan")
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu-{platform.machine()}-{torch.get_num_threads()}threads"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = name.replace(" ", "_")
    report = (f"# Layer benchmark on {name}\n\ntorch {torch.__version__}; ratios are fwd+bwd time over GCNConv's "
              f"on the same graph.\n\n{table(rows)}\n\n## Roofline\n\n{ROOFLINE_NOTE}\n\n{roofline_table(rows)}\n\n"
              f"Machine baselines, the best of at least 5 repeats in this run (every shape and size in the JSON):"
              f"\n\n{baseline_lines(baselines)}\n\n{run_line(record)}\n")
    (out / f"{stem}.md").write_text(report)
    (out / f"{stem}.json").write_text(json.dumps({"device": name, "torch": torch.__version__, "run": record,
                                                 "baselines": baselines, "rows": rows}, indent=1))
    print(report)


if __name__ == "__main__":
    main()
