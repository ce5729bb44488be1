r"""Gauge groups of lattice gauge theory: U(1) and SU(n), as complex matrices ``[..., n, n]``.

A group is named by a string: ``"U1"`` (:math:`n = 1`), ``"SU2"``, ``"SU3"``, or ``"SU<n>"`` for any
:math:`n \ge 2`. Elements are complex ``[..., n, n]`` tensors (``[..., 1, 1]`` for U(1)).

* :func:`random_element` draws from the Haar measure; :func:`random_near_identity` draws the small
  steps of a Metropolis update.
* :func:`project_to_group` maps any invertible matrix to the nearest group element (the unitary
  factor of its polar decomposition, then the determinant phase removed for SU(n)).
* :func:`check_in_group` raises a ``ValueError`` that names the largest deviation.
"""
from __future__ import annotations

import math
import re

import torch
from torch import Tensor

__all__ = ["group_size", "random_element", "random_near_identity", "project_to_group",
           "group_deviation", "check_in_group", "identity"]


def group_size(group: str) -> int:
    """The matrix size ``n`` of a group name: ``"U1"`` -> 1, ``"SU2"`` -> 2, ``"SU<n>"`` -> n."""
    if not isinstance(group, str):
        raise TypeError(f"group must be a string such as 'U1', 'SU2' or 'SU3', got {type(group).__name__}")
    if group.upper() == "U1":
        return 1
    match = re.fullmatch(r"SU\(?(\d+)\)?", group.upper())
    if match is None or int(match.group(1)) < 2:
        raise ValueError(f"unknown gauge group {group!r}; use 'U1', 'SU2', 'SU3' or 'SU<n>' with n >= 2")
    return int(match.group(1))


def _is_u1(group: str) -> bool:
    return group_size(group) == 1


def identity(group: str, size=(), dtype=torch.complex128, device=None) -> Tensor:
    """The identity element, repeated over ``size``: ``[*size, n, n]``."""
    n = group_size(group)
    return torch.eye(n, dtype=dtype, device=device).expand(*size, n, n).clone()


def random_element(group: str, size=(), *, generator: torch.Generator | None = None,
                   dtype=torch.complex128, device=None) -> Tensor:
    r"""Haar-random group elements ``[*size, n, n]``.

    U(1): :math:`e^{i\theta}` with :math:`\theta` uniform. SU(n): the QR decomposition of a complex
    Gaussian matrix with the phases of ``diag(R)`` moved into ``Q`` (Haar on U(n), Mezzadri 2007),
    divided by an n-th root of its determinant; the root's branch only multiplies by a central
    element, which leaves the Haar measure unchanged.
    """
    n = group_size(group)
    size = tuple(size) if not isinstance(size, int) else (size,)
    real = torch.empty((), dtype=dtype).real.dtype
    if n == 1:
        theta = 2 * math.pi * torch.rand(size, generator=generator, dtype=real, device=device)
        return torch.polar(torch.ones_like(theta), theta).to(dtype)[..., None, None]
    z = torch.complex(torch.randn(*size, n, n, generator=generator, dtype=real, device=device),
                      torch.randn(*size, n, n, generator=generator, dtype=real, device=device))
    q, r = torch.linalg.qr(z)
    d = torch.diagonal(r, dim1=-2, dim2=-1)
    q = q * (d / d.abs()).unsqueeze(-2)
    return _remove_det_phase(q)


def random_near_identity(group: str, size=(), scale: float = 0.2, *,
                         generator: torch.Generator | None = None, dtype=torch.complex128,
                         device=None) -> Tensor:
    r"""Random elements :math:`\exp(i\,\epsilon H)` near the identity, ``[*size, n, n]``.

    :math:`H` is a Hermitian (traceless for SU(n)) matrix with Gaussian entries, and
    :math:`\epsilon` = ``scale``. The distribution is symmetric under :math:`V \to V^\dagger`, as a
    Metropolis proposal must be.
    """
    n = group_size(group)
    size = tuple(size) if not isinstance(size, int) else (size,)
    real = torch.empty((), dtype=dtype).real.dtype
    if n == 1:
        theta = scale * torch.randn(size, generator=generator, dtype=real, device=device)
        return torch.polar(torch.ones_like(theta), theta).to(dtype)[..., None, None]
    if n == 2:  # exp(i eps a.sigma) = cos(eps |a|) + i sin(eps |a|) a.sigma / |a|, no matrix_exp
        a = torch.randn(*size, 3, generator=generator, dtype=real, device=device)
        norm = a.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(real).tiny)
        c, s = torch.cos(scale * norm), torch.sin(scale * norm) * a / norm
        row0 = torch.stack([torch.complex(c[..., 0], s[..., 2]), torch.complex(s[..., 1], s[..., 0])], -1)
        row1 = torch.stack([torch.complex(-s[..., 1], s[..., 0]), torch.complex(c[..., 0], -s[..., 2])], -1)
        return torch.stack([row0, row1], -2).to(dtype)
    a = torch.complex(torch.randn(*size, n, n, generator=generator, dtype=real, device=device),
                      torch.randn(*size, n, n, generator=generator, dtype=real, device=device))
    h = (a + a.conj().transpose(-1, -2)) / 2
    tr = torch.diagonal(h, dim1=-2, dim2=-1).sum(-1)
    h = h - tr[..., None, None] / n * torch.eye(n, dtype=dtype, device=device)
    return torch.linalg.matrix_exp(1j * scale * h)


def project_to_group(matrix: Tensor, group: str) -> Tensor:
    r"""The group element nearest to each matrix ``[..., n, n]``.

    U(1): :math:`z / |z|`. SU(n): the unitary polar factor :math:`U = A V^\dagger` of the SVD
    :math:`M = A \Sigma V^\dagger` (the unitary closest in Frobenius norm), divided by an n-th root
    of :math:`\det U`. Use it to repair links that drifted from the group by rounding.
    """
    n = group_size(group)
    if not matrix.is_complex():
        matrix = matrix.to(torch.complex128)
    if matrix.shape[-2:] != (n, n):
        raise ValueError(f"{group} elements are [..., {n}, {n}] matrices, got shape {list(matrix.shape)}")
    if n == 1:
        return matrix / matrix.abs().clamp_min(torch.finfo(matrix.real.dtype).tiny)
    a, _, vh = torch.linalg.svd(matrix)
    return _remove_det_phase(a @ vh)


def group_deviation(matrix: Tensor, group: str) -> Tensor:
    r"""How far each matrix is from the group: :math:`\max |U U^\dagger - 1|`, and for SU(n) also
    :math:`|\det U - 1|`; shape ``[...]``."""
    n = group_size(group)
    eye = torch.eye(n, dtype=matrix.dtype, device=matrix.device)
    err = (matrix @ matrix.conj().transpose(-1, -2) - eye).abs().amax(dim=(-1, -2))
    if n > 1:
        err = torch.maximum(err, (torch.linalg.det(matrix) - 1).abs())
    return err


def check_in_group(matrix: Tensor, group: str, atol: float | None = None, name: str = "links") -> None:
    """Raise ``ValueError`` unless every matrix ``[..., n, n]`` is in the group within ``atol``.

    ``atol`` defaults to 1e-10 in complex128 and 1e-5 in complex64.
    """
    n = group_size(group)
    if not isinstance(matrix, Tensor) or not matrix.is_complex():
        raise TypeError(f"{name} must be a complex tensor, got {getattr(matrix, 'dtype', type(matrix).__name__)}")
    if matrix.dim() < 2 or matrix.shape[-2:] != (n, n):
        raise ValueError(f"{name} of group {group} must end in [{n}, {n}], got shape {list(matrix.shape)}")
    if atol is None:
        atol = 1e-10 if matrix.dtype == torch.complex128 else 1e-5
    if matrix.numel() == 0:
        return
    err = group_deviation(matrix, group)
    worst = float(err.max())
    if not math.isfinite(worst) or worst > atol:
        bad = int((~(err <= atol)).sum())
        what = "|U U^dagger - 1|" if n == 1 else "|U U^dagger - 1| or |det U - 1|"
        raise ValueError(
            f"{bad} of {err.numel()} {name} are not in {group} (max {what} = {worst:.3e} > {atol:.0e}); "
            f"project them with meshgdl.groups.project_to_group(links, {group!r})"
        )


def _remove_det_phase(u: Tensor) -> Tensor:
    n = u.shape[-1]
    phase = torch.angle(torch.linalg.det(u)) / n
    return u * torch.polar(torch.ones_like(phase), -phase)[..., None, None]
