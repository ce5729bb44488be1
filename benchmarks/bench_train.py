"""The per-step overhead of ``meshgdl train``'s loop against a bare PyTorch loop, in one process.

    PYTHONPATH=. python benchmarks/bench_train.py              # 60 steps each, best of 3
    PYTHONPATH=. python benchmarks/bench_train.py --steps 200 --repeat 5

Both loops train the same GemResNet on the same Ising graphs (8 x 8 periodic grids, batches of 4)
with Adam. The bare loop is forward, loss, ``zero_grad``, backward, ``step`` over a PyG loader.
The trainer's loop adds what makes a run resumable and observable: the resumable sampler, the
scheduler, a row of ``metrics.csv`` every step, the loss read back to the CPU, and the progress
bar's bookkeeping (drawn off), with checkpoints switched off here and timed apart (one checkpoint,
written atomically). Prints milliseconds per step for both, their difference and ratio.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from meshgdl.train.config import complete_config
from meshgdl.train.trainer import Trainer


def config(steps_per_epoch_hint: int, epochs: int, output: str) -> dict:
    return complete_config({
        "seed": 0, "output": output,
        "model": {"name": "GemResNet", "hidden_copies": 4, "max_frequency": 1, "num_blocks": 1},
        "data": {"name": "ising", "shape": [8, 8], "temperatures": [1.5, 3.5], "num_configs": 2 * steps_per_epoch_hint,
                 "n_therm": 50, "n_decor": 2},
        "schedule": {"epochs": epochs},
        "train": {"batch_size": 4, "val_fraction": 0.0, "device": "cpu", "checkpoint_every": 10**9,
                  "keep_checkpoints": 1},
    })


def bare_loop(trainer: Trainer, steps: int) -> float:
    """Seconds per step of the plain loop on the trainer's own model, data and optimiser."""
    from torch_geometric.loader import DataLoader

    model, opt, loss_fn = trainer.model, trainer.optimizer, trainer.loss_fn
    graphs = [trainer.graphs[i] for i in trainer.train_idx]
    model.train()
    done, start = 0, time.perf_counter()
    while done < steps:
        for batch in DataLoader(graphs, batch_size=4, shuffle=True):
            loss = loss_fn(model(batch), batch.y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            if done == steps:
                break
    return (time.perf_counter() - start) / steps


def trainer_loop(trainer: Trainer, steps: int, run: Path) -> float:
    trainer.step_count = 0
    run.mkdir()
    start = time.perf_counter()
    trainer.fit(run, stop_after=steps, progress=False)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config(16, 10**6, tmp))
        trainer.config["train"]["checkpoint_every"] = 10**9
        bare_loop(trainer, 5)  # warm the geometry caches of both loops alike
        bare, ours = [], []
        for r in range(args.repeat):
            bare.append(bare_loop(trainer, args.steps))
            ours.append(trainer_loop(trainer, args.steps, Path(tmp) / f"run{r}"))
        start = time.perf_counter()
        trainer.checkpoint(Path(tmp) / "run0")
        ckpt = time.perf_counter() - start
    b, o = min(bare) * 1e3, min(ours) * 1e3
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps, best of {args.repeat}")
    print(f"bare loop     {b:8.2f} ms/step")
    print(f"meshgdl train {o:8.2f} ms/step")
    print(f"overhead      {o - b:8.2f} ms/step ({o / b:.3f}x)")
    print(f"a checkpoint  {ckpt * 1e3:8.2f} ms")


if __name__ == "__main__":
    main()
