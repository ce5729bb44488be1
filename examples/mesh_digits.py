r"""MNIST digits laid on a real mesh (GEM-CNN's experiment): GemConv against IsoConv and FeaStConv.

    PYTHONPATH=. python examples/mesh_digits.py --quick

Each sample is one digit laid on the decimated Stanford bunny through the mesh's geodesic log map
at a random vertex (:mod:`meshgdl.datasets.mesh_images`), as one scalar feature a vertex; a model
classifies it from per-vertex logits averaged over the mesh. Models from ``cortex_models.py`` at one
parameter budget: the GemConv U-Net with transport pooling, IsoConv and PyG's FeaStConv. They train
on upright digits (NR) or digits turned by a random angle (R) and are tested on turned digits at
other vertices. Writes JSON and Markdown with the run's provenance to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cortex_models import MODELS, Hierarchy, build_model, count_parameters  # noqa: E402

LABELS = {"gem": "GemConv + pooling", "iso": "IsoConv", "feast": "FeaStConv"}


def run(args) -> dict:
    from meshgdl.datasets import load_images
    from meshgdl.datasets.mesh_images import decimated_bunny, mesh_image_task
    from meshgdl.geometry import mesh_graph

    v, f = decimated_bunny(args.vertices)
    graph = mesh_graph(v, f, dtype=torch.float32)
    inputs = {"mesh": graph, "hierarchy": Hierarchy.build(graph)}
    images, labels = load_images("mnist", "train")
    test_images, test_labels = load_images("mnist", "test")
    extent = args.extent * np.linalg.norm(v.max(0) - v.min(0))
    sets = {name: mesh_image_task(images, labels, v, f, args.train, extent=extent, rotate=(name == "R"), seed=1)
            for name in ("NR", "R")}
    test = mesh_image_task(test_images, test_labels, v, f, args.test, extent=extent, rotate=True, seed=2)
    out = {"vertices": len(v), "runs": {}}
    for name in args.models:
        for train_on, data in sets.items():
            torch.manual_seed(args.seed)
            model = build_model(name, 10, args.budget, in_channels=1)
            g = inputs["hierarchy" if model.pooled else "mesh"]
            arg = g if MODELS[name].domain != "none" else None
            forward = lambda x: model(torch.from_numpy(x).float()[:, None], arg).mean(0)
            opt = torch.optim.Adam(model.parameters(), lr=args.lr)
            rng = np.random.default_rng(args.seed)
            losses, t0 = [], time.time()
            for _ in range(args.epochs):
                total = 0.0
                for batch in np.array_split(rng.permutation(args.train), max(1, args.train // args.batch)):
                    opt.zero_grad()
                    loss = sum(F.cross_entropy(forward(data["x"][i])[None], torch.tensor([int(data["y"][i])]))
                               for i in batch) / len(batch)
                    loss.backward()
                    opt.step()
                    total += loss.item() * len(batch)
                losses.append(total / args.train)
            with torch.no_grad():
                pred = np.array([int(forward(x).argmax()) for x in test["x"]])
            acc = float((pred == test["y"]).mean())
            out["runs"].setdefault(name, {"parameters": count_parameters(model)})[train_on] = {
                "accuracy": acc, "losses": losses, "seconds_per_epoch": (time.time() - t0) / args.epochs}
            print(f"{name:<6} trained {train_on:<2}  {count_parameters(model)} params  loss {losses[0]:.3f} -> "
                  f"{losses[-1]:.3f}  test (turned) accuracy {acc:.3f}", flush=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="the small configuration below (default)")
    p.add_argument("--models", nargs="+", choices=sorted(LABELS), default=list(LABELS))
    p.add_argument("--vertices", type=int, default=2000, help="vertices of the decimated bunny (default: 2000)")
    p.add_argument("--extent", type=float, default=0.25, help="image half-width / mesh diagonal (default: 0.25)")
    p.add_argument("--train", type=int, default=200, help="training samples (default: 200)")
    p.add_argument("--test", type=int, default=100, help="test samples (default: 100)")
    p.add_argument("--epochs", type=int, default=3, help="epochs (default: 3)")
    p.add_argument("--batch", type=int, default=8, help="samples a step (default: 8)")
    p.add_argument("--budget", type=int, default=3000, help="parameters of every model (default: 3000)")
    p.add_argument("--lr", type=float, default=0.005, help="learning rate (default: 0.005)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    p.add_argument("--out", type=Path, default=Path("results/mesh_digits"), help="results folder")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from meshgdl.provenance import run_line, run_record

    record = run_record()
    result = run(args)
    lines = [f"Digits on the bunny ({result['vertices']} vertices), trained on {args.train} upright (NR) or turned "
             f"(R) samples for {args.epochs} epochs, tested on {args.test} turned samples at other vertices; one seed.",
             "", "| model | params | s/epoch | NR -> R accuracy | R -> R accuracy |", "|---|---|---|---|---|"]
    for name, cell in result["runs"].items():
        sec = np.mean([cell[k]["seconds_per_epoch"] for k in ("NR", "R")])
        lines.append(f"| {LABELS[name]} | {cell['parameters']} | {sec:.1f} | {cell['NR']['accuracy']:.3f} | "
                     f"{cell['R']['accuracy']:.3f} |")
    md = "\n".join(lines) + "\n\n" + run_line(record)
    print("\n" + md)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mesh_digits_quick.md").write_text(md + "\n")
    (args.out / "mesh_digits_quick.json").write_text(json.dumps({"config": {k: str(v) for k, v in vars(args).items()},
                                                                 "results": result, "run": record}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
