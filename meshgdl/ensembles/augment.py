r"""Group-orbit data augmentation for the symmetries meshgdl knows.

A group is an object with ``order`` (:math:`|G|`) and ``act(x, g)`` for ``g = 0 .. order - 1``,
element 0 the identity: :class:`CyclicRotations` of grid images (exact for multiples of
:math:`90^\circ`, bilinear interpolation otherwise) and :class:`HealpixPolarRotations` of HEALPix
maps (exact), :class:`PeriodicTranslations` of periodic lattices (exact) and their
:class:`ProductGroup`. :func:`augment_full_orbit` adds every :math:`g x` for every sample, the augmentation
under which the mean of an infinite ensemble is exactly invariant (Gerken and Kessel 2024);
:func:`augment_random` draws one element per sample, as is usual in training.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def rotate_images(x: Tensor, angle: float) -> Tensor:
    r"""Rotate images ``[..., H, W]`` by ``angle`` (radians) about their centre.

    A multiple of :math:`\pi/2` is exact, ``torch.rot90(x, k, dims=(-2, -1))`` (counter-clockwise as
    displayed, row 0 at the top); other angles sample the image bilinearly at the rotated pixel
    centres, with zeros outside it. Needs a square image unless the angle is a multiple of
    :math:`\pi`.
    """
    quarter = angle / (math.pi / 2)
    if abs(quarter - round(quarter)) < 1e-12:
        k = int(round(quarter)) % 4
        if k % 2 and x.shape[-1] != x.shape[-2]:
            raise ValueError(f"a {x.shape[-2]} x {x.shape[-1]} image is not square; it can turn by 180 degrees only")
        return torch.rot90(x, k, dims=(-2, -1))
    return _interpolated_rotation(x, angle)


def _interpolated_rotation(x: Tensor, angle: float) -> Tensor:
    h, w = x.shape[-2:]
    if h != w:
        raise ValueError(f"rotating by {math.degrees(angle):.1f} degrees needs a square image, got {h} x {w}")
    flat = x.reshape(-1, 1, h, w)
    c, s = math.cos(angle), math.sin(angle)
    # output pixel p samples the input at R(angle) p in (column, row) coordinates: for 90 degrees
    # this is torch.rot90's counter-clockwise turn
    theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=flat.dtype, device=flat.device).expand(flat.shape[0], 2, 3)
    grid = torch.nn.functional.affine_grid(theta, list(flat.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(flat, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(x.shape)


class CyclicRotations:
    r"""The rotations of square images by :math:`2\pi g / N`, ``g = 0 .. N - 1`` (the group :math:`C_N`).

    Args:
        order (int): :math:`N \ge 1`; 4 is exact, 8 and 16 interpolate the odd multiples of
            :math:`2\pi / N` (and then compose only approximately).

    Shapes:
        - ``act(x, g)``: images :math:`[..., H, W]` to the same shape.
    """

    def __init__(self, order: int):
        if isinstance(order, bool) or not isinstance(order, int) or order < 1:
            raise ValueError(f"order must be a positive integer (the N of C_N), got {order!r}")
        self.order = order

    def act(self, x: Tensor, g: int) -> Tensor:
        return rotate_images(x, 2 * math.pi * (g % self.order) / self.order)

    def __repr__(self) -> str:
        return f"CyclicRotations({self.order})"


class HealpixPolarRotations:
    r"""The rotations of the HEALPix sphere by :math:`90^\circ g` about the polar axis (exact).

    Acts on maps by the node permutation of :func:`~meshgdl.geometry.healpix_rotation`; in the
    builder's east/north frames every transport angle of this rotation is zero, so scalar and
    tangent features alike are only permuted.

    Args:
        nside (int): the resolution.
        nest (bool): nested ordering. (default: ``True``)
        node_dim (int): the dimension of ``x`` that indexes pixels. (default: ``-2``, features
            :math:`[..., N, C]`)
    """

    order = 4

    def __init__(self, nside: int, nest: bool = True, node_dim: int = -2):
        from ..geometry import healpix_rotation

        self.node_dim = node_dim
        self.perms = [healpix_rotation(nside, k, nest=nest)[0] for k in range(4)]

    def act(self, x: Tensor, g: int) -> Tensor:
        perm = self.perms[g % 4]
        if x.shape[self.node_dim] != perm.numel():
            raise ValueError(f"x has {x.shape[self.node_dim]} entries along node_dim={self.node_dim}, "
                             f"the sphere has {perm.numel()} pixels")
        return x.index_select(self.node_dim, perm.to(x.device))

    def __repr__(self) -> str:
        return f"HealpixPolarRotations(npix={self.perms[0].numel()})"


class PeriodicTranslations:
    r"""The translations of a periodic lattice ``shape = (L_1, ..., L_d)`` (the last ``d`` dimensions
    of ``x``), element ``g`` the shift by the multi-index ``unravel(g, shape)`` (``torch.roll``, exact).

    Together with :class:`CyclicRotations` (C4 maps a periodic square lattice onto itself) these are
    the symmetries of the Ising model's lattice.

    Shapes:
        - ``act(x, g)``: :math:`[..., L_1, \dots, L_d]` to the same shape.
    """

    def __init__(self, shape: tuple[int, ...]):
        shape = tuple(int(s) for s in shape)
        if not shape or min(shape) < 1:
            raise ValueError(f"shape must list positive lattice sizes, got {shape}")
        self.shape, self.order = shape, math.prod(shape)

    def act(self, x: Tensor, g: int) -> Tensor:
        if tuple(x.shape[-len(self.shape):]) != self.shape:
            raise ValueError(f"x ends in {tuple(x.shape[-len(self.shape):])}, the lattice is {self.shape}")
        shifts, rest = [], g % self.order
        for size in reversed(self.shape):
            rest, s = divmod(rest, size)
            shifts.append(s)
        return torch.roll(x, tuple(reversed(shifts)), dims=tuple(range(-len(self.shape), 0)))

    def __repr__(self) -> str:
        return f"PeriodicTranslations({self.shape})"


class ProductGroup:
    r"""Every composition :math:`a\, b` of an element of each group, applied right to left: element
    ``g = i |B| + j`` acts as ``a.act(b.act(x, j), i)``, element 0 the identity.

    The product is a group when the groups normalise each other, e.g. the rotations of a periodic
    square lattice and its translations (:math:`r t r^{-1}` is a translation): then
    ``ProductGroup(CyclicRotations(4), PeriodicTranslations((L, L)))`` lists each of the
    :math:`4 L^2` symmetries of the Ising lattice once.

    Args:
        *groups: objects with ``order`` and ``act(x, g)``, the outermost first.
    """

    def __init__(self, *groups):
        if not groups:
            raise ValueError("ProductGroup needs at least one group")
        self.groups = groups
        self.order = math.prod(g.order for g in groups)

    def act(self, x: Tensor, g: int) -> Tensor:
        rest = g % self.order
        for group in reversed(self.groups):
            rest, element = divmod(rest, group.order)
            x = group.act(x, element)
        return x

    def __repr__(self) -> str:
        return f"ProductGroup({', '.join(map(repr, self.groups))})"


def orbit(x: Tensor, group) -> Tensor:
    """Every transformed copy ``[|G|, ...]`` of ``x``: index ``g`` holds ``group.act(x, g)``, 0 the identity."""
    return torch.stack([group.act(x, g) for g in range(group.order)])


def augment_full_orbit(x: Tensor, y: Tensor, group) -> tuple[Tensor, Tensor]:
    """Samples ``[B, ...]`` and targets ``[B, ...]`` with every group element applied: ``[|G| B, ...]``
    each, element ``g`` of sample ``b`` at index ``g B + b``; targets are repeated (invariant task)."""
    return orbit(x, group).flatten(0, 1), y.repeat((group.order,) + (1,) * (y.dim() - 1))


def augment_random(x: Tensor, y: Tensor, group, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """One uniformly drawn group element per sample: ``([B, ...], y)``."""
    g = torch.randint(group.order, (x.shape[0],), generator=generator)
    out = x.clone()
    for element in g.unique().tolist():
        pick = g == element
        out[pick] = group.act(x[pick], element)
    return out, y
