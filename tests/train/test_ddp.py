"""Data parallel training on two gloo processes equals one process on the same global batch."""
import gc
import os
import socket
import subprocess
import sys
import weakref

import pytest
import torch
import torch.multiprocessing as mp

from meshgdl.train.config import dump_config, read_config
from meshgdl.train.ddp import setup, teardown
from meshgdl.train.metrics import read_metrics
from meshgdl.train.trainer import Trainer

from .conftest import ising_config

PLAIN = {"dtype": "float64", "input_dropout": 0.0, "noise_std": 0.0}  # no randomness that differs by rank


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_step(trainer: Trainer) -> dict:
    """Take one step on the first batch of epoch 0; return gradients and the parameters after it."""
    trainer.sampler.set_epoch(0)
    batch = next(iter(trainer.loader(trainer.train_idx, trainer.sampler)))
    loss = trainer.step(batch)
    return {"loss": loss, "grad": [p.grad.clone() for p in trainer.model.parameters()],
            "param": [p.detach().clone() for p in trainer.model.parameters()], "graphs": int(batch.num_graphs),
            "val": trainer.evaluate((trainer.train_idx + trainer.val_idx)[:11])}  # batches of unequal size


def worker(rank, world_size, port, config_path, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world_size),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    dist = setup("cpu")
    try:
        torch.save(first_step(Trainer(read_config(config_path), dist)), f"{out}-{rank}.pt")
    finally:
        teardown(dist)


def test_two_gloo_processes_take_the_step_of_one_process_on_the_global_batch(tmp_path, ising_root):
    optimiser = {"name": "sgd", "lr": 0.1}
    two = read_config(ising_config(tmp_path, ising_root, train=PLAIN | {"batch_size": 2}))
    one = read_config(ising_config(tmp_path, ising_root, train=PLAIN | {"batch_size": 4}))
    for config in (one, two):
        config["optimizer"] |= optimiser
    (tmp_path / "two.toml").write_text(dump_config(two))
    single = first_step(Trainer(one))  # also simulates the data once, for the workers' cache
    # spawn, not fork: a forked child can inherit a held OpenMP lock from the parent and hang
    mp.spawn(worker, args=(2, free_port(), str(tmp_path / "two.toml"), str(tmp_path / "out")), nprocs=2)
    ranks = [torch.load(tmp_path / f"out-{r}.pt") for r in range(2)]
    assert single["graphs"] == 4 and [r["graphs"] for r in ranks] == [2, 2]
    assert single["grad"][0].dtype == torch.float64
    for r in ranks:
        for g, g1 in zip(r["grad"], single["grad"]):
            torch.testing.assert_close(g, g1, rtol=0, atol=1e-12)
        for p, p1 in zip(r["param"], single["param"]):
            torch.testing.assert_close(p, p1, rtol=0, atol=1e-12)
    torch.testing.assert_close((ranks[0]["loss"] + ranks[1]["loss"]) / 2, single["loss"], rtol=0, atol=1e-12)
    assert not torch.equal(ranks[0]["loss"], ranks[1]["loss"])  # the ranks saw different graphs
    # validation, shared out to the ranks and summed over them, is that of the whole set
    for r in ranks:
        assert r["val"] == pytest.approx(single["val"], rel=1e-12, abs=1e-12)
    assert 0 < single["val"]["accuracy"] < 1 or single["val"]["loss"] > 0


def test_a_trainer_is_freed_by_reference_counting(tmp_path, ising_root):
    """No reference cycle holds a trainer: its DDP module and process group go when it does, and not
    in the interpreter's last collection at exit, where gloo's threads can abort the process."""
    trainer = Trainer(read_config(ising_config(tmp_path, ising_root, train=PLAIN)))
    first_step(trainer)
    gc.collect()  # the frames of exceptions caught while building it (optional imports) form cycles
    alive = weakref.ref(trainer)
    gc.disable()
    try:
        del trainer
        assert alive() is None
    finally:
        gc.enable()


@pytest.mark.slow
def test_torchrun_trains_with_checkpoints_from_rank_zero(tmp_path, ising_root):
    config = ising_config(tmp_path, ising_root, train=PLAIN)
    Trainer(read_config(config))  # simulate the data once
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(free_port()),
           "-m", "meshgdl", "train", config, "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env=os.environ | {"PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    rows = read_metrics(tmp_path / "run")
    assert [r["step"] for r in rows if r["split"] == "train"] == [str(s) for s in range(1, 7)]  # 3 steps an epoch
    assert done.stdout.count("steps per s") == 1  # the summary of rank 0 only
    assert (tmp_path / "run" / "checkpoints" / "step-00000006.pt").exists()
