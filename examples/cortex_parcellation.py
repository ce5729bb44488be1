r"""Per-vertex parcellation of the cortex: train on the left hemisphere, test on the right.

    PYTHONPATH=. python examples/cortex_parcellation.py --quick   # one seed, GemConv + FeaStConv
    PYTHONPATH=. python examples/cortex_parcellation.py --full    # every model, 3 seeds, both targets

Data: brainspace's conte69 surfaces (``python -m meshgdl.datasets.fetch brainspace``). Inputs are
intrinsic (thickness, curvature, T1w/T2w), standardised with statistics of the left hemisphere only;
the medial wall is excluded from loss and metrics. Test surfaces (:func:`meshgdl.datasets.cortex.
parcellation_task`): the right hemisphere mirrored (registered to the left: label copying by vertex
index or by the nearest left vertex already scores high, and both are printed), that surface
re-triangulated with half the vertices in a random order, and that surface randomly rotated.
Every model is trained on the same schedule, at about the same parameter count, over several seeds;
the script prints the whole table, writes it as JSON and Markdown and draws predicted versus true
labels on the surface (``--out``, default ``results/cortex``).
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

SURFACES = ("mirrored", "retriangulated", "rotated")


def prepare(surfaces: dict, graphs: bool = True, points_k: int = 0, connection: str = "intrinsic") -> dict:
    """Tensors for every surface: standardised inputs, labels, mesh and point-cloud graphs.

    ``surfaces`` maps names to :class:`~meshgdl.datasets.cortex.CortexSurface`; ``"train"`` gives the
    statistics. xyz inputs (for the models that take them) are centred and scaled with the training
    surface's statistics too, as a PyG user would do once for the data set.
    """
    from meshgdl.datasets.cortex import Standardizer
    from meshgdl.geometry import mesh_graph, point_cloud_graph

    train = surfaces["train"]
    scaler = Standardizer().fit(train)
    centre, scale = train.vertices.mean(0), train.vertices.std()
    data = {}
    for name, s in surfaces.items():
        item = {
            "intrinsic": torch.tensor(scaler(s.features), dtype=torch.float32),
            "xyz": torch.tensor((s.vertices - centre) / scale, dtype=torch.float32),
            "y": torch.tensor(s.labels, dtype=torch.long),
            "valid": torch.tensor(s.valid),
            "surface": s,
        }
        if graphs:
            item["mesh"] = mesh_graph(s.vertices, s.faces, dtype=torch.float32, connection=connection)
            item["mesh_hierarchy"] = Hierarchy.build(item["mesh"])
        if points_k:
            item["points"] = symmetrized(point_cloud_graph(s.vertices, k=points_k, dtype=torch.float64))
            item["points_hierarchy"] = Hierarchy.build(item["points"])
        data[name] = item
    return data


def symmetrized(graph, dtype=torch.float32):
    """The kNN graph with every edge in both directions (j among i's neighbours or i among j's),
    log maps and transports from the same tangent geometry; the pooling hierarchy needs
    symmetric edges to compose transports along paths inside each cluster."""
    from meshgdl import FramedGraph
    from meshgdl.geometry.tangent import framed_edges

    ei = graph.edge_index
    both = torch.unique(torch.cat([ei, ei.flip(0)], 1), dim=1)
    both = both[:, torch.argsort(both[1] * graph.num_nodes + both[0])]  # by target, then source
    logmap, transport = framed_edges(graph.pos, graph.frame, both)
    return FramedGraph(pos=graph.pos.to(dtype), frame=graph.frame.to(dtype), edge_index=both,
                       edge_logmap=logmap.to(dtype), edge_transport=transport.to(dtype),
                       num_nodes=graph.num_nodes)


def inputs(model, item):
    """The (features, graph) pair a model reads from one prepared surface."""
    x = item["intrinsic"]
    if model.uses_xyz:
        x = torch.cat([item["xyz"], x], 1)
    if model.domain == "none":
        return x, None
    return x, item[model.domain + ("_hierarchy" if model.pooled else "")]


def train(model, item, *, steps: int, lr: float, progress: bool = True, desc: str = ""):
    """Full-batch Adam on the training surface, one-cycle schedule (warm-up, cosine decay);
    returns the loss curve."""
    from tqdm.auto import tqdm

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    x, graph = inputs(model, item)
    target, valid = item["y"] - 1, item["valid"]  # class c is label c + 1; 0 (medial wall) is masked
    losses = []
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False, mininterval=2.0)
    model.train()
    for _ in bar:
        opt.zero_grad()
        logits = model(x, graph)
        loss = F.cross_entropy(logits[valid], target[valid])
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    return losses


@torch.no_grad()
def predict(model, item) -> np.ndarray:
    """Labels (1..C) for every vertex of a prepared surface."""
    model.eval()
    x, graph = inputs(model, item)
    return (model(x, graph).argmax(1) + 1).numpy()


def references(data) -> dict:
    """Scores of the two label-copy references (by vertex index, by nearest left vertex)."""
    from meshgdl.datasets.cortex import label_copy, parcellation_scores

    train = data["train"]["surface"]
    out = {"copy by index": {}, "copy nearest": {}}
    for name in SURFACES:
        s = data[name]["surface"]
        if s.num_vertices == train.num_vertices:
            out["copy by index"][name] = parcellation_scores(label_copy(train, s, "index"), s.labels)
        out["copy nearest"][name] = parcellation_scores(label_copy(train, s, "nearest"), s.labels)
    return out


def run(target: str, models: list[str], seeds: list[int], args) -> dict:
    """Train every model on every seed for one target; returns scores and parameter counts."""
    from meshgdl.datasets.cortex import parcellation_scores, parcellation_task

    t0 = time.time()
    surfaces = parcellation_task(target, resolution=args.resolution, seed=0)
    num_classes = int(surfaces["train"].labels.max())
    need_points = any(MODELS[m].domain == "points" for m in models)
    print(f"[{target}] preparing {len(surfaces)} surfaces and their graphs ...", flush=True)
    data = prepare(surfaces, points_k=args.points_k if need_points else 0, connection=args.connection)
    print(f"[{target}] {num_classes} classes; ready in {time.time() - t0:.0f} s", flush=True)
    result = {"target": target, "num_classes": num_classes, "references": references(data),
              "models": {}, "parameters": {}, "seconds": {}, "predictions": {}}
    for name in models:
        for seed in seeds:
            torch.manual_seed(seed)
            model = build_model(name, num_classes, args.budget)
            result["parameters"][name] = count_parameters(model)
            t = time.time()
            losses = train(model, data["train"], steps=args.steps, lr=args.lr,
                           desc=f"{target} {name} seed {seed}")
            scores = {}
            for split in ("train",) + SURFACES:
                pred = predict(model, data[split])
                scores[split] = parcellation_scores(pred, data[split]["surface"].labels)
                if seed == seeds[0] and split == "rotated":
                    result["predictions"][name] = pred
            result["models"].setdefault(name, []).append(scores)
            result["seconds"][name] = time.time() - t
            print(f"[{target}] {name:<22} seed {seed}  {count_parameters(model):>6} params  "
                  f"loss {losses[-1]:.3f}  " + "  ".join(
                      f"{k} {v['accuracy']:.3f}/{v['miou']:.3f}" for k, v in scores.items())
                  + f"  ({time.time() - t:.0f} s)", flush=True)
    result["surfaces"] = data
    return result


def table(result, seeds) -> str:
    """Markdown: accuracy and mean IoU (mean ± std over seeds) on each test surface."""
    head = "| model | params | " + " | ".join(f"{s} acc | {s} mIoU" for s in SURFACES) + " |"
    lines = [f"**{result['target']}** ({result['num_classes']} classes; {len(seeds)} seed(s); "
             "accuracy and mean IoU on the right hemisphere, medial wall excluded)", "",
             head, "|" + "---|" * (2 + 2 * len(SURFACES))]
    for name, per_surface in result["references"].items():
        cells = []
        for s in SURFACES:
            v = per_surface.get(s)
            cells += ["—", "—"] if v is None else [f"{v['accuracy']:.3f}", f"{v['miou']:.3f}"]
        lines.append(f"| {name} (reference) | 0 | " + " | ".join(cells) + " |")
    for name, runs in result["models"].items():
        cells = []
        for s in SURFACES:
            for metric in ("accuracy", "miou"):
                vals = np.array([r[s][metric] for r in runs])
                cells.append(f"{vals.mean():.3f} ± {vals.std():.3f}" if len(vals) > 1 else f"{vals[0]:.3f}")
        lines.append(f"| {MODELS[name].label} | {result['parameters'][name]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(result, path: Path, model: str):
    """True and predicted labels on the re-triangulated, rotated test surface (drawn unrotated)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    item = result["surfaces"]["retriangulated"]["surface"]
    v, f = item.vertices, item.faces
    pred = result["predictions"][model].copy()
    pred[item.labels == 0] = 0
    cmap = plt.get_cmap("tab10" if result["num_classes"] <= 9 else "gist_ncar")

    def colours(labels):
        c = np.array(cmap((labels % 10) / 9.0 if result["num_classes"] <= 9 else labels / result["num_classes"]))
        c[labels == 0] = (0.8, 0.8, 0.8, 1.0)
        return c

    fig = plt.figure(figsize=(10, 8))
    views = [(0, 180, "lateral"), (0, 0, "medial")]
    for row, (elev, azim, view) in enumerate(views):
        for col, (labels, title) in enumerate([(item.labels, "true"), (pred, f"{MODELS[model].label}")]):
            ax = fig.add_subplot(2, 2, 2 * row + col + 1, projection="3d")
            face_label = labels[f[:, 0]]
            poly = Poly3DCollection(v[f], facecolors=colours(face_label), edgecolors="none")
            ax.add_collection3d(poly)
            lim = np.abs(v - v.mean(0)).max()
            for setter, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), v.mean(0)):
                setter(c - lim, c + lim)
            ax.view_init(elev=elev, azim=azim)
            ax.set_box_aspect((1, 1, 1), zoom=1.6)
            ax.set_axis_off()
            ax.set_title(f"{title} ({view})")
    fig.suptitle(f"{result['target']}: right hemisphere, re-triangulated and rotated (drawn unrotated)")
    fig.subplots_adjust(left=0, right=1, bottom=0, top=0.92, wspace=0, hspace=0.05)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="one seed, GemConv and FeaStConv, Mesulam (default)")
    mode.add_argument("--full", action="store_true", help="every model, 3 seeds, Mesulam and Schaefer-100")
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), help="override the models")
    p.add_argument("--targets", nargs="+", choices=["mesulam", "schaefer_100"], help="override the targets")
    p.add_argument("--seeds", type=int, nargs="+", help="override the seeds")
    p.add_argument("--steps", type=int, default=100, help="training steps (full batch) (default: 100)")
    p.add_argument("--lr", type=float, default=0.01, help="peak learning rate (default: 0.01)")
    p.add_argument("--budget", type=int, default=8000, help="parameter budget of every model (default: 8000)")
    p.add_argument("--resolution", type=float, default=0.0625,
                   help="fraction of the template's 32,492 vertices the task runs at (default: 0.0625)")
    p.add_argument("--points-k", type=int, default=12, help="neighbours of the point-cloud graphs (default: 12)")
    p.add_argument("--connection", choices=["intrinsic", "normal"], default="intrinsic",
                   help="discrete connection of the mesh graphs (default: intrinsic)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    p.add_argument("--out", type=Path, default=Path("results/cortex"), help="results folder (default: results/cortex)")
    p.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.full:
        models, targets, seeds = list(MODELS), ["mesulam", "schaefer_100"], [0, 1, 2]
    else:
        models, targets, seeds = ["gem", "feast_xyz"], ["mesulam"], [0]
    models, targets, seeds = args.models or models, args.targets or targets, args.seeds or seeds
    args.out.mkdir(parents=True, exist_ok=True)
    outputs = [args.out / f"cortex_{t}.{ext}" for t in targets for ext in ("json", "md", "png")]
    existing = [str(o) for o in outputs if o.exists()]
    if existing and not args.overwrite:
        raise SystemExit(f"{', '.join(existing)} already exist; pass --overwrite or choose another --out")
    print(f"models {models}; targets {targets}; seeds {seeds}; {args.steps} steps; budget {args.budget} "
          f"parameters; resolution {args.resolution} ({round(32492 * args.resolution)} vertices); "
          f"{args.threads} threads", flush=True)
    from meshgdl.provenance import run_line, run_record

    record = run_record()
    for target in targets:
        result = run(target, models, seeds, args)
        md = table(result, seeds) + f"\n\nMesh graphs with the {args.connection} connection. " + run_line(record)
        print("\n" + md + "\n", flush=True)
        shown = next((m for m in ("gem", "gem_points") if m in models), models[0])
        figure(result, args.out / f"cortex_{target}.png", shown)
        (args.out / f"cortex_{target}.md").write_text(md + "\n")
        keep = {k: v for k, v in result.items() if k not in ("surfaces", "predictions")}
        keep.update(steps=args.steps, lr=args.lr, budget=args.budget, seeds=seeds, resolution=args.resolution,
                    connection=args.connection, run=record)
        (args.out / f"cortex_{target}.json").write_text(json.dumps(keep, indent=1))
        print(f"wrote {args.out}/cortex_{target}.{{md,json,png}}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
