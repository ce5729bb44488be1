r"""Gauge-invariant observables of lattice gauge fields: Wilson loops, plaquettes, Polyakov loops,
the topological charge of 2D U(1).

Every function takes either a lattice graph (:func:`meshgdl.geometry.lattice_graph`, or a PyG
batch of them), computed by gathering along the graph's edges, or a link tensor
:math:`U_{x,\mu}` of shape :math:`[..., *shape, d, n, n]` (leading batch dimensions allowed; the
lattice dimension :math:`d` is read from ``U.shape[-3]``), computed with ``torch.roll``. Both paths
follow the product convention of :func:`meshgdl.geometry.loop_holonomy`, and the tests hold all
three equal. The rectangular loop of size :math:`a \times b` in the plane :math:`(\mu, \nu)` at
:math:`x` goes :math:`a` steps along :math:`+\mu`, :math:`b` along :math:`+\nu`, :math:`a` along
:math:`-\mu` and :math:`b` along :math:`-\nu`:

.. math::
    W^{(a\times b)}_{x,\mu\nu} = U_{x,\mu} \cdots U_{x+(a-1)\hat\mu,\mu}\, U_{x+a\hat\mu,\nu} \cdots
    U_{x+\hat\nu,\mu}^\dagger \cdots U_{x,\nu}^\dagger,

which transforms as :math:`W_x \to \Omega_x W_x \Omega_x^\dagger`, so its trace is invariant.
"""
from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

from .graph import FramedGraph

__all__ = ["wilson_loops", "plaquettes", "traced_wilson_loops", "mean_plaquette",
           "wilson_action", "polyakov_loops", "topological_charge"]


def wilson_loops(links, size=(1, 1), mu: int = 0, nu: int = 1) -> Tensor:
    r"""The :math:`a \times b` Wilson loop matrix at every site, in the plane :math:`(\mu, \nu)`.

    Returns :math:`[N, n, n]` for a graph and :math:`[..., *shape, n, n]` for a link tensor.
    """
    a, b = _loop_size(size)
    if isinstance(links, FramedGraph):
        from .geometry.lattice import path_product

        d = _graph_dim(links)
        _check_plane(mu, nu, d)
        _check_fits(_graph_shapes(links), a, b, mu, nu)
        return path_product(links, [mu] * a + [nu] * b + [d + mu] * a + [d + nu] * b)
    u, d = _link_tensor(links)
    _check_plane(mu, nu, d)
    shape = u.shape[-3 - d:-3]
    _check_fits([tuple(shape)], a, b, mu, nu)
    axis = lambda m: u.dim() - 3 - d + m  # noqa: E731
    offset = [0] * d
    out = None
    for m, steps, sign in ((mu, a, 1), (nu, b, 1), (mu, a, -1), (nu, b, -1)):
        for _ in range(steps):
            if sign < 0:
                offset[m] -= 1
            shifted = torch.roll(u[..., m, :, :], [-o for o in offset], [axis(k) for k in range(d)])
            step = shifted if sign > 0 else shifted.conj().transpose(-1, -2)
            out = step if out is None else out @ step
            if sign > 0:
                offset[m] += 1
    return out


def plaquettes(links) -> Tensor:
    r"""Plaquettes :math:`U_{x,\mu\nu}` for every plane :math:`\mu < \nu` (lexicographic order):
    :math:`[N, P, n, n]` or :math:`[..., *shape, P, n, n]`, :math:`P = d(d-1)/2`."""
    d = _graph_dim(links) if isinstance(links, FramedGraph) else _link_tensor(links)[1]
    _need_two_dims(d)
    return torch.stack([wilson_loops(links, (1, 1), mu, nu)
                        for mu, nu in itertools.combinations(range(d), 2)], dim=-3)


def traced_wilson_loops(links, size=(1, 1)) -> Tensor:
    r""":math:`\frac1n \mathrm{Re\,tr}\, W^{(a\times b)}_{x,\mu\nu}` at every site, averaged over the
    planes :math:`\mu < \nu` and, for :math:`a \ne b`, over both orientations of the rectangle in
    the plane: :math:`[N]` or :math:`[..., *shape]`."""
    a, b = _loop_size(size)
    d = _graph_dim(links) if isinstance(links, FramedGraph) else _link_tensor(links)[1]
    _need_two_dims(d)
    terms = []
    for mu, nu in itertools.combinations(range(d), 2):
        for size_mu, size_nu in {(a, b), (b, a)}:
            w = wilson_loops(links, (size_mu, size_nu), mu, nu)
            terms.append(_trace(w).real / w.shape[-1])
    return torch.stack(terms).mean(0)


def mean_plaquette(links) -> Tensor:
    r"""The mean of :math:`\frac1n \mathrm{Re\,tr}\, U_{x,\mu\nu}` over sites and planes: ``[...]``
    for a link tensor, one value per lattice for a graph or batch (``[B]``, or ``[]`` for one)."""
    local = traced_wilson_loops(links, (1, 1))
    return _site_mean(links, local)


def wilson_action(links, beta: float) -> Tensor:
    r"""The Wilson action :math:`S = \beta \sum_{x, \mu<\nu} (1 - \frac1n \mathrm{Re\,tr}\, U_{x,\mu\nu})`
    of each lattice (same shapes as :func:`mean_plaquette`)."""
    d = _graph_dim(links) if isinstance(links, FramedGraph) else _link_tensor(links)[1]
    local = traced_wilson_loops(links, (1, 1))
    planes = d * (d - 1) // 2
    if isinstance(links, FramedGraph):
        return beta * planes * _site_mean(links, 1 - local) * _sites_per_graph(links)
    return beta * planes * (1 - local).flatten(-d).sum(-1)


def polyakov_loops(links, mu: int = -1) -> Tensor:
    r"""The traced Polyakov loop :math:`\frac1n \mathrm{tr} \prod_{t=0}^{L_\mu-1} U_{x+t\hat\mu,\mu}`
    along direction ``mu`` (default: the last, the time direction).

    Returns :math:`[..., *shape]` with the ``mu`` axis removed for a link tensor (the loop starting
    at :math:`x_\mu = 0`), and :math:`[N]` for a graph (the loop through each site; its trace does
    not depend on where along the line it starts).
    """
    if isinstance(links, FramedGraph):
        from .geometry.lattice import path_product

        d = _graph_dim(links)
        mu = _axis(mu, d)
        shapes = _graph_shapes(links)
        if len({s[mu] for s in shapes}) != 1:
            raise ValueError("a batch of lattices of different extents along mu has no common Polyakov loop path")
        p = path_product(links, [mu] * shapes[0][mu])
        return _trace(p) / p.shape[-1]
    u, d = _link_tensor(links)
    mu = _axis(mu, d)
    axis = u.dim() - 3 - d + mu
    line = u[..., mu, :, :]
    p = line.select(axis, 0)
    for t in range(1, line.shape[axis]):
        p = p @ line.select(axis, t)
    return _trace(p) / p.shape[-1]


def topological_charge(links) -> Tensor:
    r"""The topological charge of a 2D U(1) gauge field,
    :math:`Q = \frac{1}{2\pi} \sum_x \arg U_{x,01}` with :math:`\arg \in (-\pi, \pi]`: an integer on
    a periodic lattice. Shapes as :func:`mean_plaquette`."""
    d = _graph_dim(links) if isinstance(links, FramedGraph) else _link_tensor(links)[1]
    n = links.link.shape[-1] if isinstance(links, FramedGraph) else links.shape[-1]
    if d != 2 or n != 1:
        raise ValueError(f"the topological charge is defined here for 2D U(1) fields, got d = {d}, n = {n}")
    angle = torch.angle(wilson_loops(links, (1, 1), 0, 1)[..., 0, 0]) / (2 * math.pi)
    if isinstance(links, FramedGraph):
        return _site_mean(links, angle) * _sites_per_graph(links)
    return angle.flatten(-2).sum(-1)


# ---------------------------------------------------------------------- helpers
def _trace(m: Tensor) -> Tensor:
    return torch.diagonal(m, dim1=-2, dim2=-1).sum(-1)


def _link_tensor(links) -> tuple[Tensor, int]:
    if not isinstance(links, Tensor) or not links.is_complex():
        raise TypeError("links must be a lattice graph or a complex tensor [..., *shape, d, n, n], "
                        f"got {getattr(links, 'dtype', type(links).__name__)}")
    if links.dim() < 4 or links.shape[-1] != links.shape[-2] or links.dim() < 3 + links.shape[-3]:
        raise ValueError(f"a link tensor has shape [..., *shape, d, n, n] with len(shape) = d, got {list(links.shape)}")
    return links, links.shape[-3]


def _graph_dim(graph: FramedGraph) -> int:
    if "link" not in graph or "edge_direction" not in graph:
        raise ValueError("not a lattice graph; build it with meshgdl.geometry.lattice_graph")
    return int(graph.edge_direction.max()) // 2 + 1


def _graph_shapes(graph: FramedGraph) -> list[tuple[int, ...]]:
    shape = graph.lattice_shape
    if isinstance(shape, list) and shape and isinstance(shape[0], (tuple, list)):
        return [tuple(s) for s in shape]
    return [tuple(shape)]


def _loop_size(size) -> tuple[int, int]:
    a, b = (size, size) if isinstance(size, int) else tuple(size)
    if int(a) < 1 or int(b) < 1:
        raise ValueError(f"Wilson loop sizes must be at least 1, got {size}")
    return int(a), int(b)


def _check_plane(mu: int, nu: int, d: int):
    if not (0 <= mu < d and 0 <= nu < d) or mu == nu:
        raise ValueError(f"mu and nu must be two different directions in 0..{d - 1}, got {mu}, {nu}")


def _need_two_dims(d: int):
    if d < 2:
        raise ValueError(f"Wilson loops need a lattice of at least 2 dimensions, got {d}")


def _check_fits(shapes, a: int, b: int, mu: int, nu: int):
    for shape in shapes:
        if a > shape[mu] or b > shape[nu]:
            raise ValueError(f"a {a} x {b} Wilson loop in the plane ({mu}, {nu}) is larger than the "
                             f"lattice of shape {shape}; use loops of at most {shape[mu]} x {shape[nu]}")


def _axis(mu: int, d: int) -> int:
    if not -d <= mu < d:
        raise ValueError(f"direction mu = {mu} is outside 0..{d - 1}")
    return mu % d


def _sites_per_graph(graph: FramedGraph) -> Tensor | int:
    if "batch" in graph and graph.batch is not None:
        return torch.bincount(graph.batch).to(graph.link.real.dtype)
    return graph.num_nodes


def _site_mean(links, local: Tensor) -> Tensor:
    if isinstance(links, FramedGraph):
        if "batch" in links and links.batch is not None:
            total = torch.zeros(int(links.batch.max()) + 1, dtype=local.dtype, device=local.device)
            return total.index_add_(0, links.batch, local) / _sites_per_graph(links)
        return local.mean()
    d = links.shape[-3]
    return local.flatten(-d).mean(-1)
