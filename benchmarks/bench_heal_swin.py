"""HEAL-SWIN blocks per token, against a flat SWIN block on as many tokens and the graph convolutions.

    PYTHONPATH=. python benchmarks/bench_heal_swin.py [--quick] [--device cuda] [--nside 64 256 1024]

At pixel ``nside`` the tokens are patches of 4 pixels (token nside ``nside / 2``, ``N = 12 (nside/2)^2``
tokens); every block has width 96, 3 heads, MLP ratio 4 and windows of 64 tokens: HEAL-SWIN's
unshifted, grid- and ring-shifted blocks (window order 3) and a flat SWIN v1 block on a
``(3n) x (4n)`` image (``n = nside / 2``, so the same ``N``) with 8 x 8 windows, unshifted and shifted
by 4 (torchvision's block when it imports, else the reference in ``flat_swin.py``; the output says
which). GemConv (K=2, 64 channels) and GCNConv run on the pixel graph at ``nside`` (their "tokens" are
the pixels). Times are medians of repeats after a warm-up, batch 1; peak memory is the CUDA
allocator's peak, or on a CPU the growth of the peak resident size of a fresh process per case.
A case whose memory, extrapolated from the previous nside, would not fit runs forward only or is
skipped, with the reason printed. Writes ``<out>/heal_swin-<device>.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from meshgdl.provenance import run_line, run_record

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import build_graph, build_layer  # noqa: E402
from flat_swin import flat_swin_block  # noqa: E402
from run import time_layer  # noqa: E402

WIDTH, HEADS, WINDOW_ORDER, WINDOW, SHIFT = 96, 3, 3, 8, 4
# case -> the flat block its time is compared with
CASES = {
    "FlatSwin": "FlatSwin", "FlatSwin_shift4": "FlatSwin_shift4",
    "HealSwin": "FlatSwin", "HealSwin_grid": "FlatSwin_shift4", "HealSwin_ring": "FlatSwin_shift4",
    "GCNConv": "FlatSwin_shift4", "GemConv_K2": "FlatSwin_shift4",
}


def build(case: str, nside: int, device: torch.device):
    """``(call, x, tokens, implementation)`` of one case, with its geometry built and on ``device``."""
    torch.manual_seed(0)
    n = nside // 2
    if case.startswith("HealSwin"):
        from meshgdl.nn.attention.heal_swin_block import HealSwinBlock
        from meshgdl.nn.attention.healpix_sky import HealpixSky

        shift = case.partition("_")[2] or None
        sky, block = HealpixSky(n), HealSwinBlock(WIDTH, HEADS, WINDOW_ORDER, shift).to(device)
        sky.windows(WINDOW_ORDER, shift, device)  # the window plan is geometry, built once: not timed
        x = torch.randn(1, sky.num_nodes, WIDTH, device=device)
        return (lambda x: block(x, sky)), x, sky.num_nodes, "meshgdl HealSwinBlock"
    if case.startswith("FlatSwin"):
        block, impl = flat_swin_block(WIDTH, HEADS, (3 * n, 4 * n), WINDOW, SHIFT if "shift" in case else 0)
        block = block.to(device)
        return block, torch.randn(1, 3 * n, 4 * n, WIDTH, device=device), 12 * n * n, impl
    graph = build_graph(f"healpix{nside}").to(device)
    layer, x = build_layer(case, graph)
    layer = layer.to(device)
    return (lambda x: layer(x, graph)), x.to(device), graph.num_nodes, f"meshgdl {case}" if "Gem" in case else "PyG GCNConv"


def measure(case: str, nside: int, device: str, repeats: int, backward: bool) -> dict:
    device = torch.device(device)
    call, x, tokens, impl = build(case, nside, device)
    row = time_layer(call, x, device, repeats, backward)
    return {"case": case, "nside": nside, "tokens": tokens, "implementation": impl, "backward": backward,
            "forward_ns": row["forward_ms"] * 1e6 / tokens, "forward_backward_ns": row["forward_backward_ms"] * 1e6 / tokens,
            **row}


def run_case(case, nside, device, repeats, backward):
    if device.startswith("cuda"):
        row = measure(case, nside, device, repeats, backward)
        torch.cuda.empty_cache()
        return row
    cmd = [sys.executable, __file__, "--case", case, str(nside), "--device", device, "--repeats", str(repeats)]
    out = subprocess.run(cmd + ([] if backward else ["--forward-only"]), capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{case} at nside {nside} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def free_bytes(device: str) -> int:
    if device.startswith("cuda"):
        return torch.cuda.mem_get_info()[0]
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable"))


def plan(case, nside, device, done) -> tuple[bool, str | None]:
    """``(backward, reason to skip)``: the peak per token at the largest nside measured, scaled to
    this one, against 70 % of the memory free now; forward-only needs about a third."""
    before = [r for r in done if r["case"] == case and r["nside"] < nside]
    if not before:
        return True, None
    last = before[-1]
    need = last["peak_bytes"] * (nside / last["nside"]) ** 2
    if not last["backward"]:
        need *= 3
    free = 0.7 * free_bytes(device)
    if need <= free:
        return True, None
    if need / 3 <= free:
        print(f"{case} at nside {nside}: forward only, forward+backward would need ~{need / 2**30:.0f} GiB "
              f"(from nside {last['nside']}), {free / 2**30:.0f} GiB usable", flush=True)
        return False, None
    return False, f"needs ~{need / 3 / 2**30:.0f} GiB forward only (from nside {last['nside']}), {free / 2**30:.0f} GiB usable"


def table(rows) -> str:
    lines = ["| nside | tokens | case | ns/token fwd | ns/token fwd+bwd | x flat fwd | x flat fwd+bwd | compared with | peak MiB |",
             "|---:|---:|---|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        lines.append(f"| {r['nside']} | {r['tokens']:,} | {r['case']} | {r['forward_ns']:,.0f} | {r['forward_backward_ns']:,.0f} | "
                     f"{r['ratio_forward']:.2f} | {r['ratio_forward_backward']:.2f} | {CASES[r['case']]} | {r['peak_bytes'] / 2**20:,.0f} |")
    return "\n".join(lines).replace("| nan |", "| - |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--nside", type=int, nargs="*", default=[64, 256, 1024])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="nside 64 only, 3 repeats")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--append", action="store_true",
                        help="add these rows to the device's existing results (replacing equal cases)")
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--forward-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args.case[0], int(args.case[1]), args.device, args.repeats, not args.forward_only)))
        return
    record, load = run_record(), os.getloadavg()[0]
    nsides, repeats = ([64], 3) if args.quick else (args.nside, args.repeats)
    rows, notes, runs = [], [], []
    out = Path(args.out)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu-{platform.machine()}-{torch.get_num_threads()}threads"
    stem = "heal_swin-" + name.replace(" ", "_")
    old = []
    if args.append and (out / f"{stem}.json").exists():
        previous = json.loads((out / f"{stem}.json").read_text())
        old, notes, runs = previous["rows"], previous["notes"], previous["runs"]
    for nside in nsides:
        for case in args.cases.split(","):
            backward, reason = plan(case, nside, args.device, old + rows)
            if reason is None:
                try:
                    rows.append(run_case(case, nside, args.device, repeats, backward))
                except (RuntimeError, torch.OutOfMemoryError) as err:
                    reason = str(err).strip().splitlines()[-1]
            if reason:
                notes.append(f"- skipped {case} at nside {nside}: {reason}")
                print(notes[-1], flush=True)
                continue
            if not backward:
                notes.append(f"- {case} at nside {nside}: forward only (forward+backward would not fit in memory)")
            r = rows[-1]
            print(f"nside {nside:>5} {case:>16}  fwd {r['forward_ns']:9.0f} ns/token  fwd+bwd {r['forward_backward_ns']:9.0f} "
                  f"ns/token  peak {r['peak_bytes'] / 2**20:8.0f} MiB  ({r['implementation']})", flush=True)
    runs.append(dict(record, load=[load, os.getloadavg()[0]], nside=nsides, repeats=repeats))
    new = {(r["case"], r["nside"]) for r in rows}
    rows = sorted([r for r in old if (r["case"], r["nside"]) not in new] + rows,
                  key=lambda r: (r["nside"], list(CASES).index(r["case"])))
    for r in rows:
        flat = next((f for f in rows if f["case"] == CASES[r["case"]] and f["nside"] == r["nside"]), None)
        for key in ("forward", "forward_backward"):
            r[f"ratio_{key}"] = r[f"{key}_ns"] / flat[f"{key}_ns"] if flat else float("nan")
    flat_impl = sorted({r["implementation"] for r in rows if r["case"].startswith("FlatSwin")})
    report = (f"# HEAL-SWIN blocks per token on {name}\n\ntorch {torch.__version__}; batch 1, width {WIDTH}, {HEADS} heads, "
              f"windows of 64 tokens, tokens at nside/2 (patches of 4 pixels; GCNConv and GemConv: pixels at nside). "
              f"Flat SWIN block: {', '.join(flat_impl) or 'not run'}. Ratios are time per token over that of the "
              f"flat block named in 'compared with'.\n\n{table(rows)}\n\n" + ("\n".join(notes) + "\n\n" if notes else "")
              + "\n".join(f"- nside {', '.join(map(str, r['nside']))}, median of {r['repeats']} after a warm-up: "
                          f"{run_line(r)} Load average "
                          f"{r['load'][0]:.1f} at the start, {r['load'][1]:.1f} at the end." for r in runs) + "\n")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(report)
    (out / f"{stem}.json").write_text(json.dumps({"device": name, "torch": torch.__version__, "runs": runs,
                                                  "notes": notes, "rows": rows}, indent=1))
    print(report)


if __name__ == "__main__":
    main()
