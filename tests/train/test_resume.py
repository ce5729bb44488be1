"""A run stopped and resumed gives the loss curve of the uninterrupted run, bit for bit."""
import random

import numpy as np
import pytest
import torch

from meshgdl.cli import main
from meshgdl.train import checkpoint as ckpt
from meshgdl.train.metrics import read_metrics

from .conftest import ising_config


def curve(run):
    return [(r["step"], r["split"], r["loss"], r["lr"]) for r in read_metrics(run)]


def scramble():
    """What a fresh process would have: other random states than those the stopped run left."""
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)


def stopped_and_resumed(tmp_path, ising_root, stop, crash=False):
    config = ising_config(tmp_path, ising_root, run="resumed")
    assert main(["train", config, "-q", "--stop-after", str(stop)]) == 0
    if crash:  # as if killed after logging step `stop` but before its checkpoint
        ckpt.list_checkpoints(tmp_path / "resumed")[-1].unlink()
    scramble()
    assert main(["train", "--resume", str(tmp_path / "resumed"), "-q"]) == 0
    return curve(tmp_path / "resumed")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, ising_root):
    tmp = tmp_path_factory.mktemp("full")
    assert main(["train", ising_config(tmp, ising_root, run="full"), "-q"]) == 0
    return curve(tmp / "full")


# in the middle of the first epoch (of 5 steps), at a regular checkpoint, and a crash in the second
# epoch that loses the newest checkpoint: the rows logged after the one resumed from are dropped
@pytest.mark.parametrize("stop, crash", [(3, False), (4, False), (7, True)])
def test_resumed_loss_curve_equals_the_uninterrupted_one(tmp_path, ising_root, uninterrupted, stop, crash):
    assert len(uninterrupted) == 12  # 2 epochs of 5 steps, and a validation row after each
    assert stopped_and_resumed(tmp_path, ising_root, stop, crash) == uninterrupted


def test_a_missing_rng_state_breaks_the_curve(tmp_path, ising_root, uninterrupted, monkeypatch):
    """Dropout and input noise draw from torch's RNG: without its state the resumed run differs,
    so the test above proves that the state is restored, not that nothing is random."""
    restore = ckpt.set_rng_state

    def without_torch(state):
        restore({**state, "torch": torch.get_rng_state()})

    monkeypatch.setattr(ckpt, "set_rng_state", without_torch)
    monkeypatch.setattr("meshgdl.train.trainer.set_rng_state", without_torch)
    resumed = stopped_and_resumed(tmp_path, ising_root, 3)
    assert resumed[:3] == uninterrupted[:3] and resumed != uninterrupted


def test_the_checkpoint_holds_every_state(tmp_path, ising_root):
    config = ising_config(tmp_path, ising_root)
    assert main(["train", config, "-q", "--stop-after", "3"]) == 0
    state = ckpt.load_checkpoint(tmp_path / "run")
    assert state["step"] == 3 and state["sampler"]["epoch"] == 0 and state["sampler"]["position"] == 3
    assert set(state["rng"][0]) >= {"python", "numpy", "torch"}
    assert {"model", "optimizer", "scheduler", "config", "versions"} <= set(state)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "run")] == ["step-00000002.pt", "step-00000003.pt"]
    assert not list((tmp_path / "run" / "checkpoints").glob(".tmp-*"))
