r"""Pooling and unpooling along the nested HEALPix hierarchy, for features of any SO(2) frequency.

A child's feature of frequency k is first transported into its parent's frame, then the children
are combined:

.. math::
    y_p = \frac{1}{|C(p)|} \sum_{c \in C(p)} \rho_k(a_{cp})\, f_c, \qquad
    f_c^{\uparrow} = \rho_k(-a_{cp})\, y_p,

with :math:`\rho_k(a) = R(k a)` and :math:`a_{cp}` = ``graph.pool_transport`` (see
:func:`meshgdl.geometry.healpix_hierarchy.healpix_coarsen`). Both commute with gauge
transformations of the fine and the coarse frames; on scalars they equal healpy's ``ud_grade``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ... import ops
from ...field_type import FieldType

_REDUCE = ("mean", "max")


def _pool_maps(graph):
    if "pool_parent" not in graph:
        raise ValueError("the graph has no pooling map: call meshgdl.geometry.healpix_hierarchy."
                         "healpix_coarsen(graph) or healpix_levels(graph, depth) first")
    return graph.pool_parent, graph.pool_transport, int(graph.pool_size)


def _check(x: Tensor, n: int, field_type: FieldType | None) -> FieldType:
    field_type = field_type or FieldType.scalars(x.shape[-1])
    if x.dim() < 2 or x.shape[-2] != n or x.shape[-1] != field_type.dim:
        raise ValueError(f"features must be [..., {n}, {field_type.dim}] for {field_type} on this level, "
                         f"got {list(x.shape)}")
    return field_type


def pool_healpix(x: Tensor, graph, field_type: FieldType | None = None, reduce: str = "mean") -> Tensor:
    r"""Pool node features of ``graph`` onto its parents: ``[..., N, C]`` -> ``[..., M, C]``.

    Args:
        x: features on the fine graph (leading batch dimensions allowed).
        graph: the fine graph, annotated by ``healpix_coarsen``.
        field_type (FieldType, optional): layout of ``x`` (default: ``C`` scalars).
        reduce (str): ``"mean"`` over the children present, or ``"max"``: the largest value for
            scalars and, for each frequency-k pair, the transported pair of largest norm (ties
            averaged), which keeps gauge equivariance. (default: ``"mean"``)
    """
    if reduce not in _REDUCE:
        raise ValueError(f"reduce must be one of {_REDUCE}, got {reduce!r}")
    parent, angle, size = _pool_maps(graph)
    field_type = _check(x, len(parent), field_type)
    parent, angle = parent.to(x.device), angle.to(x.device)
    has = parent >= 0
    if not bool(has.all()):
        x, parent, angle = x[..., has, :], parent[has], angle[has]
    moved = field_type.transform(x, -angle)  # R(k a) f: into the parent's frame
    shape = (*x.shape[:-2], size, x.shape[-1])
    if reduce == "mean":
        return ops.scatter_mean(moved, parent, size, dim=-2)
    out = torch.zeros(shape, dtype=x.dtype, device=x.device)
    for k, sl in field_type.slices():
        part = moved[..., sl]
        if k == 0:
            idx = parent.view(*([1] * (part.dim() - 2)), -1, 1).expand_as(part)
            out[..., sl] = out[..., sl].scatter_reduce(-2, idx, part, "amax", include_self=False)
            continue
        pairs = part.unflatten(-1, (-1, 2))
        norm = pairs.norm(dim=-1)  # [..., N, m]
        idx = parent.view(*([1] * (norm.dim() - 2)), -1, 1).expand_as(norm)
        best = torch.zeros((*norm.shape[:-2], size, norm.shape[-1]), dtype=x.dtype, device=x.device)
        best = best.scatter_reduce(-2, idx, norm, "amax", include_self=False)
        win = (norm == best.gather(-2, idx)).to(x.dtype)
        total = torch.zeros_like(best).index_add_(-2, parent, win)
        summed = torch.zeros((*best.shape, 2), dtype=x.dtype, device=x.device).index_add_(-3, parent, pairs * win[..., None])
        out[..., sl] = (summed / total[..., None]).flatten(-2)
    return out


def unpool_healpix(x: Tensor, graph, field_type: FieldType | None = None) -> Tensor:
    r"""Copy each parent's features to its children, transported into their frames:
    ``[..., M, C]`` -> ``[..., N, C]``; children whose parent was dropped get zeros."""
    parent, angle, size = _pool_maps(graph)
    field_type = _check(x, size, field_type)
    parent, angle = parent.to(x.device), angle.to(x.device)
    out = field_type.transform(x[..., parent.clamp_min(0), :], angle)  # R(-k a) y: into the child's frame
    has = parent >= 0
    return out if bool(has.all()) else out * has[:, None].to(x.dtype)


class HealpixPool(nn.Module):
    r"""Pooling from nside to nside/2 (:func:`pool_healpix`).

    Args:
        field_type (FieldType): layout of the features.
        reduce (str): ``"mean"`` or ``"max"``. (default: ``"mean"``)

    Shapes:
        - input: ``x`` :math:`[..., N, C]` and the fine graph annotated by ``healpix_coarsen``
        - output: :math:`[..., M, C]`
    """

    def __init__(self, field_type: FieldType, reduce: str = "mean"):
        super().__init__()
        if reduce not in _REDUCE:
            raise ValueError(f"reduce must be one of {_REDUCE}, got {reduce!r}")
        self.field_type, self.reduce = field_type, reduce

    def forward(self, x: Tensor, graph) -> Tensor:
        return pool_healpix(x, graph, self.field_type, self.reduce)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.field_type}, reduce={self.reduce!r})"


class HealpixUnpool(nn.Module):
    r"""Unpooling from nside/2 to nside (:func:`unpool_healpix`).

    Shapes:
        - input: ``x`` :math:`[..., M, C]` and the fine graph annotated by ``healpix_coarsen``
        - output: :math:`[..., N, C]`
    """

    def __init__(self, field_type: FieldType):
        super().__init__()
        self.field_type = field_type

    def forward(self, x: Tensor, graph) -> Tensor:
        return unpool_healpix(x, graph, self.field_type)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.field_type})"
