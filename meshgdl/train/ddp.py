"""Data parallel training with ``torch.distributed``: the process group that ``torchrun`` describes.

``torchrun`` sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`setup` joins that group (NCCL when this process trains on a GPU, gloo on CPU). Without
them, training runs in one process and none of this is used.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class Dist:
    """Where this process stands: ``rank`` of ``world_size``, and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"[train] device = {name!r}, but torch sees no CUDA device; use 'cpu' or 'auto'")
    return device


def setup(device: str = "auto") -> Dist:
    """Join the process group of ``torchrun`` if there is one; return this process's :class:`Dist`."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if world_size == 1:
        return Dist(0, 1, dev)
    import torch.distributed as dist

    if not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), dev)


def teardown(d: Dist) -> None:
    """Leave the process group.

    A DDP module that only a reference cycle still holds (a caught exception's frames hold their
    locals, for one) would keep the group until the interpreter's last collection at exit, where
    freeing it can abort the process from gloo's threads; collecting first frees it while the
    interpreter is whole.
    """
    if d.enabled:
        import gc

        import torch.distributed as dist

        gc.collect()
        if dist.is_initialized():
            dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor, d: Dist) -> torch.Tensor:
    """The sum of ``t`` over every process (``t`` itself in one process)."""
    if d.enabled:
        import torch.distributed as dist

        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def gather_objects(obj, d: Dist) -> list:
    """``obj`` of every rank, in rank order (on every rank)."""
    if not d.enabled:
        return [obj]
    import torch.distributed as dist

    out = [None] * d.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(d: Dist) -> None:
    if d.enabled:
        import torch.distributed as dist

        dist.barrier()


def wrap(model: torch.nn.Module, d: Dist) -> torch.nn.Module:
    """``DistributedDataParallel(model)`` across the group: gradients are averaged over processes
    in ``backward``, so every process takes the same optimiser step."""
    if not d.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [d.device.index] if d.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)
