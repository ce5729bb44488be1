"""Shared helpers of the lattice layers: complex weights and input checks."""
from __future__ import annotations

import math

import torch
from torch import Tensor


def complex_parameter(*shape: int, fan_in: int) -> torch.nn.Parameter:
    """A complex weight stored as real pairs ``[*shape, 2]`` (optimisers see real numbers),
    initialised with variance ``1 / fan_in`` per entry."""
    w = torch.randn(*shape, 2) / math.sqrt(2 * max(fan_in, 1))
    return torch.nn.Parameter(w)


def as_complex(weight: Tensor, like: Tensor) -> Tensor:
    """The complex view of a real-pair weight, in the complex dtype of ``like``."""
    w = torch.view_as_complex(weight.to(like.real.dtype).contiguous())
    return w


def check_features(x: Tensor, channels: int, name: str) -> None:
    if not isinstance(x, Tensor) or not x.is_complex() or x.dim() != 4 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{name} expects complex matrix features [N, C, n, n], got "
                         f"{getattr(x, 'dtype', type(x).__name__)} {list(getattr(x, 'shape', []))}")
    if x.shape[1] != channels:
        raise ValueError(f"{name} was built for {channels} input channels, got {x.shape[1]}")


def identity_like(x: Tensor) -> Tensor:
    """The unit matrix as one channel: ``[N, 1, n, n]``."""
    n = x.shape[-1]
    return torch.eye(n, dtype=x.dtype, device=x.device).expand(x.shape[0], 1, n, n)


def dagger(x: Tensor) -> Tensor:
    return x.conj().transpose(-1, -2)
