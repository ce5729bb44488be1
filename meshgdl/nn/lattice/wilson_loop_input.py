r"""Wilson loops at every site as the input features of a lattice network."""
from __future__ import annotations

import itertools

import torch
from torch import Tensor

from ...geometry.lattice import lattice_steps, path_product
from ...observables import _check_fits, _graph_shapes


class WilsonLoopInput(torch.nn.Module):
    r"""Untraced rectangular Wilson loops :math:`W^{(a\times b)}_{x,\mu\nu}` at every site as matrix
    features (the plaquettes :math:`U_{x,\mu\nu}` for the default size), the gauge-covariant inputs
    of the L-CNN (`Favoni et al. 2022 <https://arxiv.org/abs/2012.12901>`_).

    Channels, in order: for each size :math:`(a, b)`, each plane :math:`\mu < \nu`
    (lexicographic) and each orientation (:math:`a` steps along :math:`\mu` then :math:`b` along
    :math:`\nu`; for :math:`a \ne b` also :math:`b` along :math:`\mu` and :math:`a` along
    :math:`\nu`); with ``conjugate=True`` their Hermitian conjugates (the loops run backwards)
    follow. The loop convention is the one of :mod:`meshgdl.observables`.

    Args:
        sizes (sequence of (int, int)): loop sizes. (default: ``((1, 1),)``)
        dim (int): the lattice dimension :math:`d`. (default: ``2``)
        conjugate (bool): add the conjugate loops. (default: ``False``)

    Shapes:
        - input: a lattice graph or batch (:func:`meshgdl.geometry.lattice_graph`)
        - output: :math:`[N, C, n, n]` complex
    """

    def __init__(self, sizes=((1, 1),), dim: int = 2, conjugate: bool = False):
        super().__init__()
        if dim < 2:
            raise ValueError(f"Wilson loops need a lattice of at least 2 dimensions, got dim={dim}")
        self.sizes = tuple((int(a), int(b)) for a, b in sizes)
        if not self.sizes or min(min(s) for s in self.sizes) < 1:
            raise ValueError(f"sizes must be a non-empty list of (a, b) with a, b >= 1, got {sizes}")
        self.dim, self.conjugate = dim, conjugate
        self.loops = [(a, b, mu, nu) for a0, b0 in self.sizes
                      for mu, nu in itertools.combinations(range(dim), 2)
                      for a, b in dict.fromkeys([(a0, b0), (b0, a0)])]
        self.out_channels = len(self.loops) * (2 if conjugate else 1)

    def forward(self, graph) -> Tensor:
        steps = lattice_steps(graph)
        d = self.dim
        if steps[0].shape[0] != 2 * d:
            raise ValueError(f"{type(self).__name__} was built for dim={d}, the lattice has {steps[0].shape[0] // 2}")
        shapes = _graph_shapes(graph)
        out = []
        for a, b, mu, nu in self.loops:
            _check_fits(shapes, a, b, mu, nu)
            out.append(path_product(graph, [mu] * a + [nu] * b + [d + mu] * a + [d + nu] * b, steps))
        x = torch.stack(out, dim=1)
        return torch.cat([x, x.conj().transpose(-1, -2)], dim=1) if self.conjugate else x

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, dim={self.dim}, conjugate={self.conjugate}"
