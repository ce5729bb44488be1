"""Exact equivariance under the 90 degree rotations of the HEALPix sphere about its polar axis."""
from __future__ import annotations

import torch
from torch import Tensor

from ..field_type import FieldType


@torch.no_grad()
def assert_healpix_rotation_equivariant(fn, graph, x: Tensor, in_type: FieldType | None = None,
                                        out_type: FieldType | None = None, ks=(1, 2, 3),
                                        atol: float | None = None) -> float:
    r"""Assert ``fn(g x, graph) == g fn(x, graph)`` for the rotations ``g`` by ``k * 90`` degrees.

    The rotation maps the HEALPix graph onto itself (:func:`meshgdl.geometry.healpix_rotation`),
    acting on features as ``g x = in_type.transform(x[perm], angles)``, so a permutation- and
    gauge-equivariant ``fn`` must commute with it exactly (up to rounding; check in float64).

    Args:
        fn: ``fn(x, graph) -> y``, features ``[..., N, C]``.
        graph: a full-sky HEALPix graph, or one whose mask the rotations keep.
        x: input features ``[..., N, in_type.dim]``.
        in_type, out_type (FieldType, optional): layouts (default: scalars).
        ks: quarter turns to check. (default: ``(1, 2, 3)``)
        atol (float, optional): tolerance (default: 1e-10 in float64, 1e-4 otherwise).

    Returns:
        The largest error seen.
    """
    from ..geometry.healpix import healpix_rotation

    y = fn(x, graph)
    in_type = in_type or FieldType.scalars(x.shape[-1])
    out_type = out_type or FieldType.scalars(y.shape[-1])
    atol = atol if atol is not None else (1e-10 if x.dtype == torch.float64 else 1e-4)
    worst = 0.0
    for k in ks:
        perm, angles = healpix_rotation(graph, k)
        angles = angles.to(x.dtype)
        moved = fn(in_type.transform(x[..., perm, :], angles), graph)
        expected = out_type.transform(y[..., perm, :], angles)
        err = float((moved - expected).abs().max())
        worst = max(worst, err)
        if err > atol:
            raise AssertionError(f"not equivariant under the rotation by {k} x 90 degrees about the "
                                 f"polar axis: max error {err:.3e} > {atol:.1e}")
    return worst
