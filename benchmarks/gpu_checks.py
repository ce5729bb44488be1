"""GemConv, IsoConv and GemResNet on a GPU: float32, float16, bfloat16 and autocast, eager and
compiled (inductor), forward and backward, each against float64 results computed on the CPU.

    PYTHONPATH=. python benchmarks/gpu_checks.py              # on a CUDA machine, one to two minutes
    PYTHONPATH=. python benchmarks/gpu_checks.py --device cpu --backend aot_eager   # a dry run

Prints one row per case (relative errors of the output, the input gradient and the weight
gradients; whether the fused path ran) and exits with status 1 if any case fails. Needs torch,
torch_geometric and numpy only: the test sphere is a latitude-longitude mesh built here.
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch

from meshgdl import FieldType
from meshgdl.geometry import mesh_graph
from meshgdl.nn import GaugeMessagePassing, GemConv, IsoConv
from meshgdl.nn.models import GemResNet

# relative-error budgets: float32 accumulates in float32; half formats round every stored value
TOLERANCE = {"float32": 1e-4, "float16": 5e-3, "bfloat16": 4e-2, "autocast-float16": 5e-3, "autocast-bfloat16": 4e-2}
# inductor compiles take tens of seconds each: by default compile the precisions that differ most
COMPILED = {"GemConv": ("float32", "float16", "bfloat16", "autocast-bfloat16"),
            "IsoConv": ("float32", "float16", "bfloat16", "autocast-bfloat16"),
            "GemResNet": ("float32", "autocast-bfloat16")}


def sphere(rings: int = 24, segments: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A closed latitude-longitude sphere: two poles and ``rings - 1`` rings of ``segments`` vertices."""
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    vertices = np.concatenate([[[0, 0, 1]], ring, [[0, 0, -1]]])
    idx = lambda r, s: 1 + r * segments + s % segments  # noqa: E731
    faces = [(0, idx(0, s), idx(0, s + 1)) for s in range(segments)]
    for r in range(rings - 2):
        for s in range(segments):
            faces += [(idx(r, s), idx(r + 1, s), idx(r + 1, s + 1)), (idx(r, s), idx(r + 1, s + 1), idx(r, s + 1))]
    last = len(vertices) - 1
    faces += [(last, idx(rings - 2, s + 1), idx(rings - 2, s)) for s in range(segments)]
    return vertices, np.array(faces)


def models(cutoff: float) -> dict:
    ft = FieldType([4, 2, 1])
    return {
        "GemConv": (lambda: GemConv(ft, ft, num_radial=2, cutoff=cutoff, use_edge_weight=True), ft.dim),
        "IsoConv": (lambda: IsoConv(8, 8, num_radial=2, cutoff=cutoff), 8),
        "GemResNet": (lambda: GemResNet(3, 2, hidden_type=ft, num_blocks=1, norm="layer", num_radial=2, cutoff=cutoff), 3),
    }


def run(module, x, graph, probe, autocast_dtype=None):
    """Output, input gradient and weight gradients of ``sum(y * probe)``, all as float64 on the CPU."""
    module.zero_grad()
    x = x.detach().requires_grad_(True)
    with torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        y = module(x, graph)
    (y.float() * probe).sum().backward()
    cpu = lambda t: t.detach().double().cpu()  # noqa: E731
    return cpu(y), cpu(x.grad), [cpu(p.grad) for p in module.parameters() if p.grad is not None]


def relative(a, b) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--backend", default="inductor", help="torch.compile backend (default: inductor)")
    parser.add_argument("--all", action="store_true", help="compile every precision, not only those in COMPILED")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device; run with --device cpu for a dry run")
        return 2
    device = torch.device(args.device)
    vertices, faces = sphere()
    graph64 = mesh_graph(vertices, faces, dtype=torch.float64, cache=False)
    graph = mesh_graph(vertices, faces, dtype=torch.float32, cache=False).to(device)
    cutoff = float(graph64.edge_logmap.norm(dim=-1).max())
    passes = []
    real = GaugeMessagePassing.gauge_propagate
    GaugeMessagePassing.gauge_propagate = lambda *a, **k: passes.append(1) or real(*a, **k)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), torch "
          f"{torch.__version__}, sphere with {graph64.num_nodes} nodes and {graph64.num_edges} edges")
    header = f"{'model':10} {'precision':18} {'mode':9} {'out err':>9} {'x grad':>9} {'w grad':>9} {'fused':>6} {'s':>6}  result"
    print(header + "\n" + "-" * len(header))
    failures = cases = 0
    for name, (build, width) in models(cutoff).items():
        torch.manual_seed(0)
        reference = build().double().eval()
        with torch.no_grad():
            for p in reference.parameters():
                if p.dim() == 1 and p.numel() < 64:  # biases: non-zero, as after training
                    p.normal_()
        x64 = torch.randn(graph64.num_nodes, width, dtype=torch.float64)
        out_dim = reference(x64, graph64).shape[-1]
        probe64 = torch.randn(graph64.num_nodes, out_dim, dtype=torch.float64)
        want = run(reference, x64, graph64, probe64)
        for precision in TOLERANCE:
            dtype = getattr(torch, precision.split("-")[-1])
            autocast = dtype if precision.startswith("autocast") else None
            param_dtype = torch.float32 if autocast else dtype
            for mode in ("eager", "compiled"):
                if mode == "compiled" and not (args.all or precision in COMPILED[name]):
                    continue
                cases += 1
                module = build().eval()
                module.load_state_dict(reference.state_dict())
                module = module.to(device=device, dtype=param_dtype)
                if mode == "compiled":
                    torch._dynamo.reset()
                    module = torch.compile(module, fullgraph=True, backend=args.backend)
                passes.clear()
                start = time.perf_counter()
                try:
                    got = run(module, x64.to(device, param_dtype), graph, probe64.to(device, torch.float32), autocast)
                    errors = [relative(got[0], want[0]), relative(got[1], want[1]),
                              max(relative(a, b) for a, b in zip(got[2], want[2]))]
                    ok = all(math.isfinite(e) and e < TOLERANCE[precision] * (1 if i == 0 else 4) for i, e in enumerate(errors))
                    ok = ok and not passes
                    note = "ok" if ok else "FAIL"
                except Exception as exc:  # report every case, then fail
                    errors, ok, note = [float("nan")] * 3, False, f"FAIL {type(exc).__name__}: {str(exc)[:120]}"
                seconds = time.perf_counter() - start
                failures += not ok
                print(f"{name:10} {precision:18} {mode:9} {errors[0]:9.1e} {errors[1]:9.1e} {errors[2]:9.1e} "
                      f"{'no' if passes else 'yes':>6} {seconds:6.1f}  {note}", flush=True)
    print(f"\n{failures} of {cases} cases failed" if failures else f"\nall {cases} cases passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
