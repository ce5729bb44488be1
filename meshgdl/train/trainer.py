"""The training loop of ``meshgdl train``: plain torch, so that every state it keeps is in view."""
from __future__ import annotations

import functools
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DistributedSampler

from . import ddp
from .checkpoint import rng_state, save_checkpoint, set_rng_state
from .metrics import MetricsLog, Tally, make_loss, metric_names
from .registry import DATASETS, MODELS


def lr_factor(schedule: dict, total_steps: int, step: int) -> float:
    """The learning rate's factor at ``step``: linear warm-up over ``warmup_steps``, then constant
    or a cosine decay to 0 at ``total_steps``."""
    if step < schedule["warmup_steps"]:
        return (step + 1) / schedule["warmup_steps"]
    if schedule["decay"] == "cosine":
        done = (step - schedule["warmup_steps"]) / max(1, total_steps - schedule["warmup_steps"])
        return 0.5 * (1 + math.cos(math.pi * min(1.0, done)))
    return 1.0


_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class ResumableSampler(DistributedSampler):
    """PyTorch's ``DistributedSampler`` (epoch ``e`` is the permutation of generator seed
    ``seed + e``, dealt to ranks as ``perm[rank::world_size]``) that starts ``start`` samples
    into the epoch, so that a resumed run sees the rest of the interrupted epoch in its order."""

    start = 0

    def __iter__(self):
        return iter(list(super().__iter__())[self.start:])

    def __len__(self):
        return self.num_samples - self.start


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Builds data, model, optimiser and schedule from a complete config, and trains.

    Args:
        config (dict): a config from :func:`~meshgdl.train.config.complete_config`.
        dist (Dist, optional): this process in the group (default: one process on ``[train] device``).
    """

    def __init__(self, config: dict, dist: ddp.Dist | None = None):
        self.config = config
        t = config["train"]
        self.dist = dist or ddp.Dist(device=ddp.pick_device(t["device"]))
        self.dtype = _DTYPES[t["dtype"]]
        if t["deterministic"] and self.dist.device.type == "cuda":
            from .. import ops

            ops.set_deterministic(True)  # CPU sums already run in a fixed order
        seed_everything(config["seed"] + self.dist.rank)
        data_cfg = dict(config["data"])
        entry = DATASETS.get(data_cfg.pop("name"))
        # Rank 0 simulates or reads the data first, so that ranks never write one cache file at once.
        if not self.dist.is_main:
            ddp.barrier(self.dist)
        data = entry.build(self.dtype, config["seed"], **data_cfg)
        if self.dist.is_main:
            ddp.barrier(self.dist)
        self.graphs, self.info = data.graphs, data.info
        self.train_idx, self.val_idx = self._split(len(self.graphs))
        model_cfg = dict(config["model"])
        torch.manual_seed(config["seed"])  # the same initial weights on every rank
        self.model = MODELS.get(model_cfg.pop("name")).build(self.info, **model_cfg).to(self.dist.device, self.dtype)
        self.net = ddp.wrap(self.model, self.dist)
        torch.manual_seed(config["seed"] + self.dist.rank)
        self.optimizer = self._optimizer()
        bs = t["batch_size"]
        self.sampler = ResumableSampler(self.train_idx, num_replicas=self.dist.world_size, rank=self.dist.rank,
                                        shuffle=True, seed=config["seed"])
        self.steps_per_epoch = math.ceil(self.sampler.num_samples / bs)
        self.total_steps = config["schedule"]["epochs"] * self.steps_per_epoch
        # a partial, not a bound method: the scheduler must not hold the trainer, or the trainer and
        # its DDP module would wait for the cycle collector (see ddp.teardown)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, functools.partial(lr_factor, config["schedule"], self.total_steps))
        self.loss_fn = make_loss(config["loss"]["name"], self.info.labels, config["loss"]["ignore_index"])
        self.metrics = metric_names(config["metrics"]["names"], self.info.labels)
        self.step_count = 0

    def _split(self, n: int):
        """Training and validation indices: a permutation by ``seed``, the last share held out."""
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.config["seed"])).tolist()
        n_val = int(round(n * self.config["train"]["val_fraction"]))
        if n_val >= n:
            raise ValueError(f"val_fraction leaves no training graph out of {n}")
        return perm[: n - n_val], perm[n - n_val:]

    def _optimizer(self):
        o = self.config["optimizer"]
        params = self.model.parameters()
        if o["name"] == "sgd":
            return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"])
        cls = torch.optim.AdamW if o["name"] == "adamw" else torch.optim.Adam
        return cls(params, lr=o["lr"], weight_decay=o["weight_decay"])

    def loader(self, indices, shuffle_sampler=None):
        from torch_geometric.loader import DataLoader

        subset = [self.graphs[i] for i in indices]
        # A private generator: the loader's base seed must not draw from the global torch RNG,
        # or a loader made mid-epoch on resume would shift every random number after it.
        return DataLoader(subset, batch_size=self.config["train"]["batch_size"], sampler=shuffle_sampler,
                          generator=torch.Generator())

    def step(self, batch) -> torch.Tensor:
        """One optimiser step on ``batch``; returns the loss (of this process's share)."""
        t = self.config["train"]
        self.net.train()
        batch = batch.to(self.dist.device)
        if "x" in batch and batch.x is not None and batch.x.is_floating_point():
            x = batch.x
            if t["noise_std"]:
                x = x + t["noise_std"] * torch.randn_like(x)
            if t["input_dropout"]:
                x = torch.nn.functional.dropout(x, t["input_dropout"], training=True)
            batch.x = x
        loss = self.loss_fn(self.net(batch), batch.y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.step_count += 1
        return loss.detach()

    @torch.no_grad()
    def evaluate(self, indices) -> dict:
        """Loss and metrics over ``indices``, shared out to the ranks and summed over them."""
        self.model.eval()
        tally = Tally(self.info.out_channels, self.info.labels, self.config["loss"]["ignore_index"], self.dist.device)
        for batch in self.loader(indices[self.dist.rank::self.dist.world_size]):
            batch = batch.to(self.dist.device)
            out = self.model(batch)
            tally.add(out, batch.y, self.loss_fn(out, batch.y))
        ddp.all_reduce_sum(tally.counts, self.dist)
        return tally.results(self.metrics)

    # --- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        import meshgdl

        return {"step": self.step_count, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": ddp.gather_objects(rng_state(), self.dist),  # one per rank, in rank order
                "sampler": {"seed": self.sampler.seed, "epoch": self.step_count // self.steps_per_epoch,
                            "position": self.step_count % self.steps_per_epoch, "train_indices": self.train_idx},
                "config": self.config, "world_size": self.dist.world_size,
                "versions": {"meshgdl": str(meshgdl.__version__), "torch": str(torch.__version__)}}

    def load_state_dict(self, state: dict) -> None:
        if state["sampler"]["train_indices"] != self.train_idx:
            raise ValueError("the checkpoint's training graphs differ from this config's; did the data change?")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step_count = state["step"]
        rngs = state["rng"]
        if len(rngs) != self.dist.world_size:
            raise ValueError(f"the run was trained on {len(rngs)} processes; resume it on as many "
                             f"(got {self.dist.world_size}) for the same random numbers and data order")
        set_rng_state(rngs[self.dist.rank])

    def checkpoint(self, run: Path) -> None:
        state = self.state_dict()  # every rank takes part: the RNG states are gathered
        if self.dist.is_main:
            save_checkpoint(run, state, keep=self.config["train"]["keep_checkpoints"])
        ddp.barrier(self.dist)

    # --- the loop ------------------------------------------------------------------------------
    def fit(self, run: Path, stop_after: int | None = None, resume: bool = False, progress: bool = True) -> dict:
        """Train to the end of the schedule, or until step ``stop_after``; returns the summary."""
        from tqdm.auto import tqdm

        t = self.config["train"]
        log = MetricsLog(run, self.metrics, self.step_count if resume else None) if self.dist.is_main else None
        end = self.total_steps if stop_after is None else min(stop_after, self.total_steps)
        bar = tqdm(total=self.total_steps, initial=self.step_count, unit="step", dynamic_ncols=True,
                   disable=not (progress and self.dist.is_main))
        start_step, start_time, samples = self.step_count, time.perf_counter(), 0
        train_loss, val = float("nan"), {}
        try:
            while self.step_count < end:
                epoch, position = divmod(self.step_count, self.steps_per_epoch)
                self.sampler.set_epoch(epoch)
                self.sampler.start = position * t["batch_size"]
                for batch in self.loader(self.train_idx, self.sampler):
                    loss = ddp.all_reduce_sum(self.step(batch).double(), self.dist) / self.dist.world_size
                    samples += int(batch.num_graphs) * self.dist.world_size
                    train_loss, lr = float(loss), self.scheduler.get_last_lr()[0]
                    if log and self.step_count % t["log_every"] == 0:
                        log.write({"step": self.step_count, "epoch": epoch, "split": "train", "lr": lr, "loss": train_loss})
                    if self.step_count % self.steps_per_epoch == 0 and self.val_idx:
                        val = self.evaluate(self.val_idx)
                        if log:
                            log.write({"step": self.step_count, "epoch": epoch, "split": "val", "lr": lr} | val)
                    if self.step_count % t["checkpoint_every"] == 0 or self.step_count == end:
                        self.checkpoint(run)
                    elapsed = time.perf_counter() - start_time
                    bar.set_postfix(loss=f"{train_loss:.4g}", graphs_per_s=f"{samples / max(elapsed, 1e-9):.1f}")
                    bar.update(1)
                    if self.step_count >= end:
                        break
        finally:
            bar.close()
            if log:
                log.close()
        elapsed = time.perf_counter() - start_time
        return {"steps": self.step_count, "of": self.total_steps, "train_loss": train_loss,
                "steps_per_s": (self.step_count - start_step) / max(elapsed, 1e-9),
                "graphs_per_s": samples / max(elapsed, 1e-9), "seconds": elapsed} | {f"val_{k}": v for k, v in val.items()}
