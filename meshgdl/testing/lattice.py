"""Equivariance checks for lattice gauge layers: local gauge transformations and translations."""
from __future__ import annotations

import torch
from torch import Tensor


def _call(module, graph, x):
    return module(graph) if x is None else module(x, graph)


def _covariant(y: Tensor, num_nodes: int, n: int) -> bool:
    return y.is_complex() and y.dim() >= 3 and y.shape[0] == num_nodes and y.shape[-2:] == (n, n)


def assert_lattice_gauge_equivariant(module, graph, x: Tensor | None = None, *, atol: float = 1e-10,
                                     seed: int = 0) -> float:
    r"""Check ``module`` under a random gauge transformation :math:`\Omega_x` at every site.

    The links become :math:`\Omega_i U_{ij} \Omega_j^\dagger` and matrix features ``x``
    :math:`[N, C, n, n]` become :math:`\Omega_x F \Omega_x^\dagger`. ``module(graph)`` (without
    ``x``) or ``module(x, graph)`` must then return :math:`\Omega_x Y \Omega_x^\dagger` if its output
    is complex :math:`[N, ..., n, n]`, and the same output otherwise (invariant scalars).
    Run in float64 (complex128 links); raises ``AssertionError`` with the error, or returns it.
    """
    from ..graph import gauge_transform
    from ..groups import random_element

    if "link" not in graph or graph.link is None:
        raise ValueError("not a lattice graph; build it with meshgdl.geometry.lattice_graph")
    if graph.link.dtype != torch.complex128 or (x is not None and x.dtype != torch.complex128):
        raise TypeError("check lattice equivariance in double precision: complex128 links and "
                        "features, and module.double()")
    n, num = graph.link.shape[-1], graph.num_nodes
    group = getattr(graph, "gauge_group", None)
    group = group[0] if isinstance(group, list) else group
    group = group or ("U1" if n == 1 else f"SU{n}")
    omega = random_element(group, (num,), generator=torch.Generator().manual_seed(seed))
    omega = omega.to(graph.link.device)
    moved = gauge_transform(graph, omega)
    x_moved = None if x is None else omega[:, None] @ x @ omega[:, None].conj().transpose(-1, -2)
    y, y_moved = _call(module, graph, x), _call(module, moved, x_moved)
    if _covariant(y, num, n):
        shape = (num,) + (1,) * (y.dim() - 3) + (n, n)
        w = omega.view(shape)
        want = w @ y @ w.conj().transpose(-1, -2)
    else:
        want = y
    err = float((y_moved - want).detach().abs().max()) if y.numel() else 0.0
    scale = float(y.detach().abs().max()) if y.numel() else 0.0
    if not err <= atol * max(1.0, scale):
        raise AssertionError(f"{type(module).__name__} is not lattice gauge equivariant: max error "
                             f"{err:.3e} (outputs up to {scale:.3e}, tolerance {atol:.0e})")
    return err


def assert_lattice_translation_equivariant(module, graph, x: Tensor | None = None, shift=None, *,
                                           atol: float = 1e-10) -> float:
    r"""Check that shifting the field by ``shift`` sites (periodically) shifts the output.

    The shifted lattice is rebuilt with :func:`meshgdl.geometry.lattice_graph` from the rolled
    links :math:`U'_{x,\mu} = U_{x-s,\mu}`, so the check sees a node permutation of a freshly
    built graph. Default shift: ``(1, 2, 3, ...)``. Works on a single lattice.
    """
    from ..geometry.lattice import lattice_graph, lattice_links, lattice_shape

    shape = lattice_shape(graph)
    d = len(shape)
    shift = tuple(range(1, d + 1)) if shift is None else tuple(shift)
    axes = list(range(d))
    site = torch.arange(graph.num_nodes).view(shape)
    perm = site.roll(shift, axes).flatten()  # node k of the shifted field is node perm[k]
    u = lattice_links(graph)
    moved = lattice_graph(shape, group=graph.gauge_group, links=u[perm], dtype=graph.link.dtype)
    y = _call(module, graph, x)
    y_moved = _call(module, moved, None if x is None else x[perm])
    err = float((y_moved - y[perm]).detach().abs().max()) if y.numel() else 0.0
    scale = float(y.detach().abs().max()) if y.numel() else 0.0
    if not err <= atol * max(1.0, scale):
        raise AssertionError(f"{type(module).__name__} is not translation equivariant: max error {err:.3e}")
    return err
