r"""Gauge-equivariant lattice convolution (L-Conv of the L-CNN)."""
from __future__ import annotations

import torch
from torch import Tensor

from ...geometry.lattice import lattice_steps
from ._lattice import as_complex, check_features, complex_parameter, dagger, identity_like


class LatticeConv(torch.nn.Module):
    r"""Parallel transport of matrix features along straight lattice paths, with learned mixing of
    channels, from `Favoni et al., "Lattice gauge equivariant convolutional neural networks"
    (PRL 128, 032003, 2022) <https://arxiv.org/abs/2012.12901>`_.

    .. math::
        F'_{x,a} = \sum_b \omega^{0}_{ab} F_{x,b}
        + \sum_{k=0}^{2d-1} \sum_{s=1}^{K} \sum_b \omega^{k,s}_{ab}\,
          U_{x \to x+s\hat k}\, F_{x+s\hat k,b}\, U_{x \to x+s\hat k}^\dagger
        + \beta_a \mathbb{1},

    where :math:`U_{x \to x+s\hat k}` is the product of the links along the straight path of
    :math:`s` steps in direction :math:`k` (the encoding of ``edge_direction``: :math:`+\hat\mu`
    for :math:`k = \mu`, :math:`-\hat\mu` for :math:`k = d + \mu`), and the weights
    :math:`\omega, \beta` are complex. Under a gauge transformation
    :math:`F'_x \to \Omega_x F'_x \Omega_x^\dagger`; every direction has its own weights, shared
    over the sites, so the layer commutes with lattice translations.

    Args:
        in_channels (int): input channels :math:`C_{in}`.
        out_channels (int): output channels :math:`C_{out}`.
        kernel_size (int): the longest path :math:`K`, in steps (the kernel covers :math:`2K + 1`
            sites along each axis). (default: ``1``)
        dim (int): the lattice dimension :math:`d`. (default: ``2``)
        bias (bool): add a learned multiple of the unit matrix. (default: ``True``)

    Shapes:
        - input: features :math:`[N, C_{in}, n, n]` complex, a lattice graph (or batch) with
          ``link``, ``edge_direction`` and ``edge_index`` (:func:`meshgdl.geometry.lattice_graph`)
        - output: :math:`[N, C_{out}, n, n]`
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, dim: int = 2,
                 bias: bool = True):
        super().__init__()
        if kernel_size < 1 or dim < 1 or in_channels < 1 or out_channels < 1:
            raise ValueError("in_channels, out_channels, kernel_size and dim must be >= 1")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.dim = kernel_size, dim
        self.num_paths = 1 + 2 * dim * kernel_size
        self.weight = complex_parameter(out_channels, self.num_paths * in_channels,
                                        fan_in=self.num_paths * in_channels)
        self.bias = torch.nn.Parameter(torch.zeros(out_channels, 2)) if bias else None

    def transported(self, x: Tensor, graph) -> Tensor:
        r"""The features and their transports along every path: :math:`[N, P, C_{in}, n, n]`,
        ``P = 1 + 2 d K``; path ``1 + k K + (s - 1)`` is :math:`s` steps in direction :math:`k`."""
        neighbour, step_link = lattice_steps(graph)
        if neighbour.shape[0] != 2 * self.dim:
            raise ValueError(f"{type(self).__name__} was built for dim={self.dim}, "
                             f"the lattice has {neighbour.shape[0] // 2} dimensions")
        out = [x]
        for k in range(2 * self.dim):
            link = step_link[k][:, None].to(x.dtype)
            moved = x
            for _ in range(self.kernel_size):
                # s steps = one step of the (s - 1)-step transport taken from the neighbour
                moved = link @ moved[neighbour[k]] @ dagger(link)
                out.append(moved)
        return torch.stack(out, dim=1)

    def forward(self, x: Tensor, graph) -> Tensor:
        check_features(x, self.in_channels, type(self).__name__)
        paths = self.transported(x, graph).flatten(1, 2)
        out = torch.einsum("npij,op->noij", paths, as_complex(self.weight, x))
        if self.bias is not None:
            out = out + as_complex(self.bias, x)[:, None, None] * identity_like(x)
        return out

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"dim={self.dim}, bias={self.bias is not None}")
