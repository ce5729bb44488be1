"""Losses, validation metrics that add up across processes, and the metrics CSV of a run."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import torch
from torch import Tensor


def align(out: Tensor, y: Tensor, labels: bool) -> tuple[Tensor, Tensor]:
    """Prediction and target in the shapes of the loss: ``[M, C]`` and ``[M]`` (labels) or ``[M, C]``."""
    if labels:
        return out.reshape(-1, out.shape[-1]), y.reshape(-1)
    return out.reshape(y.shape[0], -1), y.reshape(y.shape[0], -1).to(out.dtype)


def make_loss(name: str, labels: bool, ignore_index: int):
    """``loss(out, y) -> scalar`` for ``cross_entropy``, ``mse``, ``l1`` or ``auto``."""
    if name == "auto":
        name = "cross_entropy" if labels else "mse"
    if name == "cross_entropy":
        if not labels:
            raise ValueError("cross_entropy needs integer labels, but this data set has values; use mse or l1")
        return lambda out, y: torch.nn.functional.cross_entropy(*align(out, y, True), ignore_index=ignore_index)
    if name in ("mse", "l1"):
        fn = torch.nn.functional.mse_loss if name == "mse" else torch.nn.functional.l1_loss
        return lambda out, y: fn(*align(out, y, False))
    raise ValueError(f"[loss] name must be cross_entropy, mse, l1 or auto, got {name!r}")


def metric_names(names: list, labels: bool) -> list[str]:
    if list(names) == ["auto"]:
        return ["accuracy", "miou"] if labels else ["mse", "mae"]
    known = ("accuracy", "miou") if labels else ("mse", "mae")
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(f"metrics {', '.join(bad)} do not apply to {'labels' if labels else 'values'}; use {', '.join(known)}")
    return list(names)


class Tally:
    """Sums from which the metrics follow; :meth:`sums` is one tensor, so processes add it in one
    ``all_reduce`` and every metric is then that of the whole validation set.

    Labels: the confusion matrix :math:`[C, C]` (rows: truth). Values: the count, the sum of
    squared and of absolute errors. Both: the loss summed over targets, and their number.
    """

    def __init__(self, num_classes: int, labels: bool, ignore_index: int, device):
        self.labels, self.ignore_index, self.num_classes = labels, ignore_index, num_classes
        size = num_classes * num_classes if labels else 3
        self.counts = torch.zeros(size + 2, dtype=torch.float64, device=device)

    def add(self, out: Tensor, y: Tensor, loss: Tensor) -> None:
        out, y = align(out.detach(), y, self.labels)
        c = self.counts
        if self.labels:
            keep = y != self.ignore_index
            pairs = y[keep] * self.num_classes + out[keep].argmax(-1)
            c[:-2] += torch.bincount(pairs, minlength=self.num_classes**2).to(c.dtype)
            n = int(keep.sum())
        else:
            err = (out - y).double()
            c[0] += err.numel()
            c[1] += (err**2).sum()
            c[2] += err.abs().sum()
            n = err.numel()
        # the loss is a mean over the batch's targets: weighted by their number, the total is the
        # mean over the whole set, however the set was cut into batches and shared out to ranks
        c[-2] += float(loss) * n
        c[-1] += n

    def results(self, names: list[str]) -> dict[str, float]:
        c = self.counts.cpu()
        out = {"loss": float(c[-2] / c[-1].clamp(min=1))}
        if self.labels:
            cm = c[:-2].view(self.num_classes, self.num_classes)
            truth, pred, hit = cm.sum(1), cm.sum(0), cm.diag()
            values = {"accuracy": float(hit.sum() / cm.sum().clamp(min=1)),
                      "miou": float((hit / (truth + pred - hit))[truth > 0].mean()) if (truth > 0).any() else 0.0}
        else:
            n = c[0].clamp(min=1)
            values = {"mse": float(c[1] / n), "mae": float(c[2] / n)}
        return out | {k: values[k] for k in names}


class MetricsLog:
    """``RUN/metrics.csv``: one row per logged step (``split`` train) and per validation (``val``).

    On resume, rows after the checkpoint's step are dropped first (written after the checkpoint by
    the run that stopped), so that the file reads as one uninterrupted run.
    """

    COLUMNS = ["step", "epoch", "split", "lr", "loss"]

    def __init__(self, run: Path, metrics: list[str], resume_step: int | None = None):
        self.path = Path(run) / "metrics.csv"
        self.columns = self.COLUMNS + list(metrics)
        rows = []
        if resume_step is not None and self.path.exists():
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, self.columns)
            writer.writeheader()
            writer.writerows(rows)
        self._file = open(self.path, "a", newline="")
        self._writer = csv.DictWriter(self._file, self.columns, extrasaction="ignore")
        self._tensorboard = _tensorboard(run)

    def write(self, row: dict) -> None:
        self._writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
        self._file.flush()
        if self._tensorboard is not None:
            for key, value in row.items():
                if isinstance(value, float):
                    self._tensorboard.add_scalar(f"{row['split']}/{key}", value, row["step"])

    def close(self) -> None:
        self._file.close()
        if self._tensorboard is not None:
            self._tensorboard.close()


def _tensorboard(run: Path):
    """A TensorBoard writer in ``RUN/tensorboard`` when TensorBoard is installed, else ``None``."""
    if os.environ.get("MESHGDL_NO_TENSORBOARD"):
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(Path(run) / "tensorboard"))


def read_metrics(run) -> list[dict]:
    """The rows of ``RUN/metrics.csv`` as dicts of strings."""
    with open(Path(run) / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))
