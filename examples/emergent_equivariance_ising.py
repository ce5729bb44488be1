"""Emergent equivariance on the Ising model: deep ensembles that tell the ordered from the disordered phase.

The first experiment of Gerken and Kessel ("Emergent Equivariance in Deep Ensembles", ICML 2024),
kept small: Ising configurations on a periodic L x L lattice from meshgdl's own checkerboard
Metropolis (:func:`meshgdl.datasets.ising_metropolis`), labelled by phase (T < T_c). The symmetry
group is the lattice's: quarter turns times periodic translations, 4 L^2 elements. Ensembles of small
CNNs (zero padding and a dense read-out, so neither turn nor shift is built in) train with and
without a random group element per configuration; a C4 group CNN (:class:`meshgdl.nn.models.CNGroupCNN`
on the periodic grid, invariant to the whole group by construction) trains without. Orbit-same
predictions (of 4 L^2) in distribution (new configurations at the training temperatures) and out
of it (temperatures near T_c, never trained on, and random spins, T = infinity).

    python examples/emergent_equivariance_ising.py            # L = 8, a minute or two on 2 cores

Results go to docs/results/emergent_equivariance/ising.{json,md}.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emergent_equivariance import GridGroupCNN, _cell, _sizes, pooled_probs  # noqa: E402

from meshgdl.ensembles import CyclicRotations, PeriodicTranslations, ProductGroup, ensemble_size_curve  # noqa: E402
from meshgdl.provenance import run_line, run_record  # noqa: E402

SETTINGS = dict(side=8, train_temperatures=(1.5, 1.8, 3.0, 3.5), per_temperature=200, test_per_temperature=15,
                ood_temperatures=(2.1, 2.3, 2.5), ood_per_temperature=20, random=40, members=8, seeds=1,
                group_members=2, epochs=10)


def ising_cnn(side: int) -> torch.nn.Module:
    """A 3 x 3 convolution, a strided one and a dense read-out of two logits (zero padding: not
    translation invariant, nor rotation invariant)."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(8 * ((side + 1) // 2) ** 2, 2))


def ising_group_cnn(side: int) -> torch.nn.Module:
    return GridGroupCNN(4, pool=1, channels=(8,), classes=2, periodic=True)


def load(cfg, seed=0) -> dict:
    """``{"train": (spins [n, L, L], phase [n]), test set: (spins, phase or None)}``, spins as +-1 floats."""
    from meshgdl.datasets.ising import ISING_CRITICAL_TEMPERATURE, ising_metropolis

    shape = (cfg["side"], cfg["side"])

    def sample(temperatures, count, offset):
        spins, labels = [], []
        for t, temperature in enumerate(temperatures):
            s = ising_metropolis(shape, temperature, count, n_therm=200, n_decor=4, chains=min(count, 25),
                                 seed=seed + offset + t, start="hot")
            spins.append(s.float())
            labels.append(torch.full((count,), int(temperature < ISING_CRITICAL_TEMPERATURE)))
        return torch.cat(spins), torch.cat(labels)

    gen = torch.Generator().manual_seed(seed)
    random = torch.randint(0, 2, (cfg["random"], *shape), generator=gen).float() * 2 - 1
    return {"train": sample(cfg["train_temperatures"], cfg["per_temperature"], 0),
            "training temperatures (in distribution)": sample(cfg["train_temperatures"], cfg["test_per_temperature"],
                                                              100),
            "near T_c (OOD)": sample(cfg["ood_temperatures"], cfg["ood_per_temperature"], 200),
            "random spins, T = ∞ (OOD)": (random, None)}


def run(data, cfg, seed=0, log=print) -> dict:
    """``{training: {test set: rows of ensemble_size_curve}}`` on the orbits of the lattice group."""
    (x, y), tests = data["train"], {k: v for k, v in data.items() if k != "train"}
    side = x.shape[-1]
    group = ProductGroup(CyclicRotations(4), PeriodicTranslations((side, side)))
    cnn = functools.partial(ising_cnn, side)
    results = {}
    trainings = (("ensemble + augmentation", group, cnn, None), ("ensemble, no augmentation", None, cnn, None),
                 ("CNGroupCNN (C4, periodic grid), no augmentation", None, functools.partial(ising_group_cnn, side),
                  cfg["group_members"]))
    for label, train_group, factory, members in trainings:
        probs = pooled_probs(x, y, train_group, cfg, tests, factory, members, group, seed)[1]
        results[label] = {name: ensemble_size_curve(p, _sizes(p.shape[0]), tests[name][1]) for name, p in probs.items()}
        log(f"{label}: " + ", ".join(f"{n} {rows[-1]['orbit_same']:.1f}" for n, rows in results[label].items()))
        if train_group is not None:
            results["one model + augmentation (M = 1)"] = {n: rows[:1] for n, rows in results[label].items()}
    return results


def markdown(results, cfg, seconds, record) -> str:
    order = 4 * cfg["side"] ** 2
    sizes = _sizes(cfg["members"] * cfg["seeds"])
    lines = [f"### Ising, {cfg['side']} x {cfg['side']} periodic lattice: orbit-same predictions (of {order}, quarter "
             "turns times translations) against ensemble size M, mean ± std over disjoint ensembles", "",
             "| training | test set | " + " | ".join(f"M = {s}" for s in sizes)
             + " | divergence (M = 1 → largest) | accuracy (largest M) |", "|---|---|" + "---|" * (len(sizes) + 2)]
    for label, per_set in results.items():
        for name, rows in per_set.items():
            by_size = {r["size"]: _cell(r) for r in rows}
            acc = rows[-1].get("accuracy")
            div = f"{rows[0]['divergence']:.3g}" + (f" → {rows[-1]['divergence']:.3g}" if len(rows) > 1 else "")
            lines.append(f"| {label} | {name} | " + " | ".join(by_size.get(s, "") for s in sizes)
                         + f" | {div} | {'' if acc is None else f'{acc:.3f}'} |")
    lines += ["", f"Training: {cfg['per_temperature']} configurations at each of T = "
              f"{', '.join(map(str, cfg['train_temperatures']))} (label: T < T_c = 2.269), {cfg['epochs']} epochs; "
              f"near T_c: T = {', '.join(map(str, cfg['ood_temperatures']))} (accuracy there against the infinite "
              f"lattice's phase). {cfg['members']} members × {cfg['seeds']} seed(s), "
              f"{cfg['group_members']} CNGroupCNNs per seed; {seconds / 60:.1f} minutes. " + run_line(record)]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, help="ensemble members per seed (default: 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("docs/results/emergent_equivariance"))
    parser.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    args = parser.parse_args(argv)
    cfg = dict(SETTINGS, **({"members": args.members} if args.members else {}))
    outputs = [args.out / f"ising.{ext}" for ext in ("json", "md")]
    existing = [str(o) for o in outputs if o.exists()]
    if existing and not args.overwrite:
        raise SystemExit(f"{', '.join(existing)} already exist; pass --overwrite or choose another --out")
    torch.set_num_threads(args.threads)
    start, record = time.time(), run_record()
    results = run(load(cfg, args.seed), cfg, args.seed)
    seconds = time.time() - start
    md = markdown(results, cfg, seconds, record)
    print("\n" + md)
    args.out.mkdir(parents=True, exist_ok=True)
    outputs[1].write_text(md)
    outputs[0].write_text(json.dumps({"settings": cfg, "seed": args.seed, "seconds": seconds, "results": results,
                                      "run": record}, indent=1))
    print(f"wrote {outputs[0]} and {outputs[1]}")


if __name__ == "__main__":
    main()
