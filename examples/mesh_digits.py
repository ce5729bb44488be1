r"""MNIST digits laid on a real mesh (GEM-CNN's experiment): GemConv against IsoConv and FeaStConv.

    PYTHONPATH=. python examples/mesh_digits.py --quick               # ~5 min: 400 digits, 300 steps
    PYTHONPATH=. python examples/mesh_digits.py --medium --seeds 0 1 2 # ~15 min a seed: 4,000 digits, 1,500 steps

Each sample is one digit laid on the decimated Stanford bunny through the mesh's geodesic log map
at a random vertex (:mod:`meshgdl.datasets.mesh_images`), as one scalar feature a vertex. Models
from ``cortex_models.py`` at one parameter budget: the GemConv U-Net with transport pooling
(:class:`meshgdl.nn.models.GemUNet`, graph task), IsoConv and PyG's FeaStConv. Every model classifies
from the largest value of each (invariant) channel over the mesh: the digit covers a few percent of
the vertices, and a mean over the bunny dilutes it (with per-vertex logits averaged over the mesh all
three models stayed at chance). They train on upright digits (NR) or digits turned by a random angle
(R) and are tested on turned digits at other vertices. ``--quick`` (300 steps on 400 digits) is
too short for any model to learn; ``--medium`` (1,500 steps on the 4,000 training digits) is the
first configuration in which GemConv does. Writes JSON and Markdown with the run's provenance to
``--out``.
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
from cortex_models import Hierarchy, Spec, _feast, _iso, build_model, count_parameters  # noqa: E402

DEPTH = 2  # the max over the 128 nodes of the second coarsening, each about 16 vertices
LABELS = {"gem": "GemConv + pooling", "iso": "IsoConv", "feast": "FeaStConv"}
# 400 digits at 64 placements are memorised before anything placement-invariant is learnt; with all
# 4,000 training digits GemConv's loss starts to fall after about 600 steps (one seed, see docs)
MODES = {"quick": {"train": 400, "test": 200, "epochs": 6}, "medium": {"train": 4000, "test": 400, "epochs": 3}}


def _gem(in_channels, width, num_classes):
    from meshgdl.nn.models import GemUNet

    return GemUNet(in_channels, width, num_classes, depth=DEPTH, task="graph", readout="max")


# every model reads out the largest value of each channel over the mesh: a mean over the
# whole bunny dilutes the few hundred vertices the digit covers (all models stayed at chance)
SPECS = {"gem": Spec(LABELS["gem"], "mesh", False, _gem),
         "iso": Spec(LABELS["iso"], "mesh", False, lambda i, w, c: _iso(i, w, c, readout="max")),
         "feast": Spec(LABELS["feast"], "mesh", False, lambda i, w, c: _feast(i, w, c, readout="max"))}


def _as_tensor(x):
    return torch.from_numpy(x).float()[..., None]


def _accuracy(model, g, x, y) -> float:
    with torch.no_grad():
        pred = np.concatenate([model(_as_tensor(part), g).argmax(-1).numpy()
                               for part in np.array_split(x, max(1, len(x) // 50))])
    return float((pred == y).mean())


def _train(name, data, test, g, seed, args):
    """One model trained on ``data`` from ``seed`` (initialisation and batch order; the digits and
    their placements are the same for every seed). Returns the model and its record."""
    torch.manual_seed(seed)
    model = build_model(SPECS[name], 10, args.budget, in_channels=1)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps = max(1, args.train // args.batch)
    # the one-cycle schedule of spherical_images.py; at least two warm-up steps
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps,
                                                pct_start=max(0.2, 2 / (args.epochs * steps)))
    rng = np.random.default_rng(seed)
    losses, t0 = [], time.time()
    for _ in range(args.epochs):
        total = 0.0
        for batch in np.array_split(rng.permutation(args.train), steps):
            opt.zero_grad()
            loss = F.cross_entropy(model(_as_tensor(data["x"][batch]), g), torch.from_numpy(data["y"][batch]))
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(batch)
        losses.append(total / args.train)
    seconds = (time.time() - t0) / args.epochs
    # fit on as many training digits as there are test digits: tells underfitting from memorising
    fit = slice(0, min(args.train, args.test))
    return model, {"accuracy": _accuracy(model, g, test["x"], test["y"]), "losses": losses,
                   "train_accuracy": _accuracy(model, g, data["x"][fit], data["y"][fit]), "seconds_per_epoch": seconds}


def _cell(values) -> str:
    v = np.array(values)
    return f"{v.mean():.3f} ± {v.std():.3f}" if len(v) > 1 else f"{v[0]:.3f}"


def run(args) -> dict:
    from meshgdl.datasets import load_images
    from meshgdl.datasets.mesh_images import decimated_bunny, mesh_image_task
    from meshgdl.geometry import mesh_graph

    v, f = decimated_bunny(args.vertices)
    graph = mesh_graph(v, f, dtype=torch.float32)
    hierarchy = Hierarchy.build(graph)
    images, labels = load_images("mnist", "train")
    test_images, test_labels = load_images("mnist", "test")
    extent = args.extent * np.linalg.norm(v.max(0) - v.min(0))
    sets = {name: mesh_image_task(images, labels, v, f, args.train, extent=extent, rotate=(name == "R"), seed=1)
            for name in args.train_on}
    test = mesh_image_task(test_images, test_labels, v, f, args.test, extent=extent, rotate=True, seed=2)
    covered = float((test["x"] > 0.5).sum(1).mean())
    out = {"vertices": len(v), "digit_vertices": covered, "runs": {}}
    for name in args.models:
        for train_on, data in sets.items():
            for seed in args.seeds:
                model, cell = _train(name, data, test, hierarchy if name == "gem" else graph, seed, args)
                out["runs"].setdefault(name, {"parameters": count_parameters(model)})
                out["runs"][name].setdefault(train_on, {"seeds": {}})["seeds"][seed] = cell
                losses = cell["losses"]
                print(f"{name:<6} trained {train_on:<2} seed {seed}  {count_parameters(model)} params  loss "
                      f"{losses[0]:.3f} -> {losses[-1]:.3f}  train accuracy {cell['train_accuracy']:.3f}  test "
                      f"(turned) accuracy {cell['accuracy']:.3f}  {cell['seconds_per_epoch']:.1f} s/epoch", flush=True)
            runs = out["runs"][name][train_on]
            for key in ("accuracy", "train_accuracy"):
                values = [c[key] for c in runs["seeds"].values()]
                runs[key], runs[key + "_std"] = float(np.mean(values)), float(np.std(values))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="400 digits, 6 epochs, 200 test digits (default)")
    mode.add_argument("--medium", action="store_true", help="the 4,000 training digits, 3 epochs, 400 test digits")
    p.add_argument("--models", nargs="+", choices=sorted(LABELS), default=list(LABELS))
    p.add_argument("--train-on", nargs="+", choices=["NR", "R"], default=["NR", "R"],
                   help="upright (NR) and/or turned (R) training digits (default: both)")
    p.add_argument("--vertices", type=int, default=2000, help="vertices of the decimated bunny (default: 2000)")
    p.add_argument("--extent", type=float, default=0.25, help="image half-width / mesh diagonal (default: 0.25)")
    p.add_argument("--train", type=int, help="training samples (default: the mode's)")
    p.add_argument("--test", type=int, help="test samples (default: the mode's)")
    p.add_argument("--epochs", type=int, help="epochs (default: the mode's)")
    p.add_argument("--batch", type=int, default=8, help="samples a step (default: 8)")
    p.add_argument("--budget", type=int, default=3000, help="parameters of every model (default: 3000)")
    p.add_argument("--lr", type=float, default=0.01, help="peak learning rate of the one-cycle schedule (default: 0.01)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="model seeds (initialisation and batch order), reported as mean ± std (default: 0)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    p.add_argument("--out", type=Path, default=Path("results/mesh_digits"), help="results folder")
    args = p.parse_args(argv)
    args.mode = "medium" if args.medium else "quick"
    for key, value in MODES[args.mode].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    torch.set_num_threads(args.threads)
    from meshgdl.provenance import run_line, run_record

    record = run_record()
    result = run(args)
    seeds = len(args.seeds)
    lines = [f"Digits on the bunny ({result['vertices']} vertices; a test digit covers {result['digit_vertices']:.0f} "
             f"vertices above 0.5), trained on {args.train} upright (NR) or turned (R) samples at 64 vertices for "
             f"{args.epochs} epochs ({args.epochs * max(1, args.train // args.batch)} steps, batches of {args.batch}, "
             f"one-cycle to lr {args.lr}), tested on {args.test} turned samples at other vertices; max read-out over "
             f"the mesh; {seeds} seed(s){' (model seeds ' + ' '.join(map(str, args.seeds)) + '), mean ± std' if seeds > 1 else ''}. "
             f"Train accuracy: on the first {min(args.train, args.test)} training samples.",
             "", "| model | params | s/epoch | NR -> R accuracy | R -> R accuracy | NR / R train accuracy |",
             "|---|---|---|---|---|---|"]
    for name, cell in result["runs"].items():
        sec = np.mean([c["seconds_per_epoch"] for k in args.train_on for c in cell[k]["seeds"].values()])
        acc = [_cell([c["accuracy"] for c in cell[k]["seeds"].values()]) if k in cell else "—" for k in ("NR", "R")]
        fit = " / ".join(_cell([c["train_accuracy"] for c in cell[k]["seeds"].values()]) if k in cell else "—"
                         for k in ("NR", "R"))
        lines.append(f"| {LABELS[name]} | {cell['parameters']} | {sec:.1f} | {acc[0]} | {acc[1]} | {fit} |")
    md = "\n".join(lines) + "\n\n" + run_line(record)
    print("\n" + md)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"mesh_digits_{args.mode}.md").write_text(md + "\n")
    (args.out / f"mesh_digits_{args.mode}.json").write_text(
        json.dumps({"config": {k: str(v) for k, v in vars(args).items()}, "results": result, "run": record}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
