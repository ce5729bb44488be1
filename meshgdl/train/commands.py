"""``meshgdl train``, ``meshgdl evaluate`` and ``meshgdl predict``: run folders, resume, summaries."""
from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

from .._files import atomic_write

CONFIG_NAME = "config.toml"


def prepare_run(output, force: bool) -> Path:
    """Create the run folder; an existing one is replaced only with ``force`` and only if it is a
    run folder (holds ``config.toml``) or empty, so that a typo in ``output`` never deletes data."""
    run = Path(output)
    if run.exists():
        if not run.is_dir():
            raise NotADirectoryError(f"{run} is a file; give the run a folder name in [output] or --output")
        if any(run.iterdir()):
            if not force:
                raise FileExistsError(f"the run folder {run} exists; pass --force to replace it, "
                                      f"or `meshgdl train --resume {run}` to continue it")
            if not (run / CONFIG_NAME).is_file():
                raise FileExistsError(f"{run} is not empty and is not a run folder (no {CONFIG_NAME}); "
                                      "--force replaces run folders only; choose another output")
            shutil.rmtree(run)
    run.mkdir(parents=True, exist_ok=True)
    return run


def cmd_train(args) -> int:
    from . import ddp
    from .checkpoint import load_checkpoint
    from .config import complete_config, config_template, dump_config, read_config
    from .trainer import Trainer

    if args.print_config:
        sys.stdout.write(config_template(args.print_config, args.data))
        return 0
    if args.stop_after is not None and args.stop_after < 1:
        raise ValueError(f"--stop-after must be a step of 1 or more, got {args.stop_after}")
    if bool(args.config) == bool(args.resume):
        raise ValueError("give a CONFIG.toml to start a run, or --resume RUN to continue one (not both)")
    dist = None
    try:
        if args.resume:
            run = Path(args.resume)
            state = load_checkpoint(run)
            config = complete_config(state["config"])
            _check_versions(state["versions"])
        else:
            config = read_config(args.config)
            if args.output:
                config["output"] = args.output
        dist = ddp.setup(config["train"]["device"])
        if not args.resume:
            run = Path(config["output"])
            if dist.is_main:
                prepare_run(run, args.force)
                with atomic_write(run / CONFIG_NAME, overwrite=True) as tmp:
                    tmp.write_text(dump_config(config))
            ddp.barrier(dist)
        summary = _fit(Trainer(config, dist), run, args, state if args.resume else None)
        if dist.is_main:
            print(summary_table(summary, run))
    finally:
        if dist is not None:
            ddp.teardown(dist)
    return 0


def _fit(trainer, run: Path, args, state: dict | None) -> dict:
    """Train; the trainer (and its DDP module) is released on return, before the group is torn down."""
    if state is not None:
        trainer.load_state_dict(state)
    return trainer.fit(run, stop_after=args.stop_after, resume=state is not None, progress=not args.quiet)


def _check_versions(versions: dict) -> None:
    import torch

    import meshgdl

    now = {"meshgdl": str(meshgdl.__version__), "torch": str(torch.__version__)}
    changed = [f"{k} {versions.get(k)} -> {v}" for k, v in now.items() if versions.get(k) != v]
    if changed:
        warnings.warn(f"the run was trained with other versions ({', '.join(changed)}); "
                      "the resumed run may not match an uninterrupted one bit for bit", stacklevel=2)


def summary_table(summary: dict, run: Path) -> str:
    rows = [("run", str(run)), ("steps", f"{summary['steps']} of {summary['of']}")]
    rows += [(k.replace("_", " "), f"{v:.6g}") for k, v in summary.items() if k not in ("steps", "of")]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def cmd_evaluate(args) -> int:
    from .predict import evaluate_run

    results = evaluate_run(args.run_folder, split=args.split)
    width = max(map(len, results))
    print("\n".join(f"  {k:<{width}}  {v:.6g}" for k, v in results.items()))
    return 0


def cmd_predict(args) -> int:
    from .predict import predict_file

    path = predict_file(args.run_folder, args.input, args.output, overwrite=args.force)
    print(f"wrote {path}")
    return 0


def add_arguments(sub) -> None:
    """The ``train``, ``evaluate`` and ``predict`` subcommands of the ``meshgdl`` parser."""
    train = sub.add_parser("train", help="train a model from a TOML config (or resume a run)")
    train.add_argument("config", nargs="?", help="the TOML config")
    train.add_argument("--resume", metavar="RUN", help="continue the run in folder RUN from its last checkpoint")
    train.add_argument("--print-config", metavar="MODEL", help="write a complete, commented config for MODEL and exit")
    train.add_argument("--data", help="with --print-config: the data set (default: the model's usual one)")
    train.add_argument("--output", help="the run folder (overrides the config's output)")
    train.add_argument("--stop-after", type=int, metavar="STEP", help="stop (with a checkpoint) after this step; "
                       "the schedule still runs to its end when resumed")
    train.add_argument("--force", action="store_true", help="replace an existing run folder")
    train.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=cmd_train)

    evaluate = sub.add_parser("evaluate", help="loss and metrics of a trained run")
    evaluate.add_argument("run_folder", metavar="RUN")
    evaluate.add_argument("--split", choices=["val", "train", "all"], default="val",
                          help="the graphs to evaluate (default: val, or all when the run held none out)")
    evaluate.set_defaults(run=cmd_evaluate)

    predict = sub.add_parser("predict", help="predict with a trained run; writes the input's format")
    predict.add_argument("run_folder", metavar="RUN")
    predict.add_argument("input", metavar="INPUT", help="a HEALPix FITS map or a mesh file, like the training data")
    predict.add_argument("-o", "--output", required=True, help="a FITS map for HEALPix; a PLY or a .label.gii for meshes")
    predict.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    predict.set_defaults(run=cmd_predict)
