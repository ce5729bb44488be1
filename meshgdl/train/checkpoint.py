"""Checkpoints that resume exactly: every RNG state, the data position, written atomically.

A checkpoint is one ``torch.save`` dict, read back with ``weights_only=True`` (plain tensors,
numbers, strings, lists and dicts only), so that loading a run never executes code from the file.
"""
from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import torch

from .._files import atomic_write

_NAME = re.compile(r"step-(\d+)\.pt$")
FORMAT = 1


def rng_state() -> dict:
    """The state of every random generator training draws from: python, numpy, torch CPU and CUDA."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": _to_lists(random.getstate()),
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(_to_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(x):
    return [_to_lists(v) for v in x] if isinstance(x, tuple) else x


def _to_tuples(x):
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x


def checkpoint_path(run: Path, step: int) -> Path:
    return Path(run) / "checkpoints" / f"step-{step:08d}.pt"


def save_checkpoint(run: Path, state: dict, keep: int = 0) -> Path:
    """Write ``state`` as ``RUN/checkpoints/step-NNNNNNNN.pt`` atomically; keep the newest ``keep``.

    The file is written beside its destination and renamed into place, so a crash leaves either
    the whole checkpoint or none.
    """
    path = checkpoint_path(run, state["step"])
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, overwrite=True) as tmp:
        torch.save(dict(state, format=FORMAT), tmp)
    if keep:
        for old in list_checkpoints(run)[:-keep]:
            old.unlink(missing_ok=True)
    return path


def list_checkpoints(run) -> list[Path]:
    """The checkpoints of a run folder, oldest first."""
    folder = Path(run) / "checkpoints"
    found = [(int(m.group(1)), p) for p in folder.glob("step-*.pt") if (m := _NAME.search(p.name))]
    return [p for _, p in sorted(found)]


def load_checkpoint(run_or_file, map_location="cpu") -> dict:
    """The newest checkpoint of a run folder (or the given ``.pt`` file)."""
    path = Path(run_or_file)
    if path.is_dir():
        found = list_checkpoints(path)
        if not found:
            raise FileNotFoundError(f"no checkpoint in {path / 'checkpoints'}; is {path} a run folder of `meshgdl train`?")
        path = found[-1]
    elif not path.is_file():
        raise FileNotFoundError(f"no run folder or checkpoint at {path}")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a meshgdl train checkpoint of format {FORMAT}")
    return state
