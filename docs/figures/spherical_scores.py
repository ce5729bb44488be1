"""Score against parameter count, one panel per training augmentation (Gerken et al. 2022, Fig. 3).

    PYTHONPATH=. python docs/figures/spherical_scores.py [--results RUN.json [RUN.json ...]]

Reads the committed results of ``examples/spherical_images.py`` (no training): the score on rotated
test maps (classification accuracy, segmentation mIoU without background) against the parameter
count on a log scale, one line per model family through its budgets (1x, 4x, 16x in a full run; a
single point each in the quick and medium runs), one panel per augmentation (NR, NR + polar,
NR + SO(3)). Several runs of one configuration (e.g. the medium run and its 4x and 16x baselines)
are drawn together. Writes ``docs/figures/spherical_scores.png``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
from spherical_models import LABELS  # noqa: E402

TITLES = {"none": "NR", "polar": "NR + polar rotations", "so3": "NR + SO(3) rotations"}
METRICS = {"classification": ("accuracy", "accuracy"), "segmentation": ("miou_fg", "mIoU without background")}


def curves(result: dict, metric: str, augmentation: str) -> dict:
    """``{model: (parameters [S], mean [S], std [S])}`` over the model's budgets, by parameters."""
    out = {}
    for cell in result["runs"].values():
        if augmentation not in cell:
            continue
        scores = [r[metric] for r in cell[augmentation]]
        out.setdefault(cell["model"], []).append((cell["parameters"], np.mean(scores), np.std(scores)))
    return {m: tuple(np.array(v).T) for m, v in ((m, sorted(p)) for m, p in out.items())}


def merge_runs(records: list[dict]) -> tuple[dict, str]:
    """One record holding every run's cells; the runs must share their data and training settings."""
    first = records[0]
    same = ("source", "nside", "train_maps", "test_maps", "epochs", "batch", "lr", "budget")
    for other in records[1:]:
        differ = [k for k in same if other["config"][k] != first["config"][k]]
        if differ:
            raise SystemExit(f"runs differ in {differ}; draw them in separate figures")
    results = {}
    for rec in records:
        for task, result in rec["results"].items():
            results.setdefault(task, {"runs": {}})["runs"].update(
                {f"{rec['run']['commit']}/{key}": cell for key, cell in result["runs"].items()})
    augmentations = [a for a in TITLES if any(a in r["config"]["augmentations"] for r in records)]
    merged = {**first, "results": results, "config": {**first["config"], "augmentations": augmentations}}
    return merged, ", ".join(sorted({r["run"]["commit"][:10] for r in records}))


def main(argv=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, nargs="+",
                        default=[ROOT / "docs/results/spherical_images/spherical_images_medium.json",
                                 ROOT / "docs/results/spherical_images/scaling/spherical_images_medium.json",
                                 ROOT / "docs/results/spherical_images/scaling_none_polar/spherical_images_medium.json"])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".png"))
    args = parser.parse_args(argv)
    records = [json.loads(path.read_text()) for path in args.results]
    record, commits = merge_runs(records)
    seeds = " or ".join(str(n) for n in sorted({len(r["seeds"]) for r in records}))
    tasks = [t for t in METRICS if t in record["results"]]
    augmentations = [a for a in TITLES if a in record["config"]["augmentations"]]
    fig, axes = plt.subplots(len(tasks), len(augmentations), figsize=(3.6 * len(augmentations), 3.0 * len(tasks)),
                             sharex=True, sharey="row", squeeze=False)
    budget = record["config"]["budget"]
    colours = dict(zip(LABELS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for row, task in enumerate(tasks):
        metric, ylabel = METRICS[task]
        for col, augmentation in enumerate(augmentations):
            ax = axes[row, col]
            for model, (params, mean, std) in curves(record["results"][task], metric, augmentation).items():
                ax.errorbar(params, mean, yerr=std if std.any() else None, marker="o", color=colours[model],
                            label=LABELS[model], capsize=3)
            ax.set_xscale("log")
            # room for the 4x and 16x baselines of a full run, so that every run reads on one scale
            ax.set_xlim(budget / 2, budget * 32)
            ax.grid(alpha=0.3)
            if row == 0:
                ax.set_title(TITLES[augmentation])
            if col == 0:
                ax.set_ylabel(f"{task}\n{ylabel} (rotated test)")
            if row == len(tasks) - 1:
                ax.set_xlabel("parameters")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    config = record["config"]
    fig.suptitle(f"spherical {config['source']}, nside {config['nside']}, {config['train_maps']} training maps, "
                 f"{config['epochs']} epochs, {seeds} seed(s) a point (bars: std); commit {commits}",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
