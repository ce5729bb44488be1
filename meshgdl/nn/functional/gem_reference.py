r"""A slow, plainly written GEM convolution: one dense kernel matrix per edge.

It reads the weights of a :class:`meshgdl.nn.GemConv` and evaluates

.. math::
    f'_i = \frac{1}{\deg i} \sum_j w_{ij} K(\theta_{ij}, \ell_{ij}) \rho_\text{in}(a_{ji}) f_j
    + K_\text{self} f_i + b

with :math:`K` built entry by entry from :func:`kernel_basis` (not from the phase coefficients
of the fast path) and :math:`\rho_\text{in}` as a block-diagonal matrix of rotations. It forms
:math:`E \times C_\text{out} \times C_\text{in}` tensors, so use it on small graphs, in tests.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ...graph import rotation_matrix
from .gem_basis import gaussian_radial, kernel_basis, self_basis


def _rho(field_type, angle: Tensor) -> Tensor:
    """Block-diagonal :math:`\\rho(a)`: ``[E]`` -> ``[E, C, C]``."""
    out = angle.new_zeros(angle.shape[0], field_type.dim, field_type.dim)
    for k, sl in field_type.slices():
        for c in range(sl.start, sl.stop, 1 if k == 0 else 2):
            if k == 0:
                out[:, c, c] = 1.0
            else:
                out[:, c:c + 2, c:c + 2] = rotation_matrix(k * angle)
    return out


def gem_conv_reference(conv, x: Tensor, graph) -> Tensor:
    """The output of ``conv`` (a :class:`~meshgdl.nn.GemConv`) computed with per-edge matrices."""
    in_type, out_type = conv.in_type, conv.out_type
    j, i = graph.edge_index
    logmap = graph.edge_logmap
    theta = torch.atan2(logmap[:, 1], logmap[:, 0])
    length = logmap.norm(dim=-1)
    radial = max(conv.num_radial, 1)
    phi = gaussian_radial(length, conv.num_radial, conv.cutoff) if conv.num_radial else torch.ones_like(length)[:, None]
    kernel = x.new_zeros(len(theta), out_type.dim, in_type.dim)
    in_sl, out_sl = dict(in_type.slices()), dict(out_type.slices())
    for n, m, offset, shape, _ in conv._blocks:
        w = conv.weight[offset:offset + math.prod(shape)].view(shape[0], shape[1] // radial, radial, shape[2])
        basis = kernel_basis(m, n, theta).to(x.dtype)                      # [B, E, d_n, d_m]
        dn, dm = basis.shape[2], basis.shape[3]
        for o in range(shape[0]):
            for c in range(shape[1] // radial):
                block = torch.einsum("rb,er,bexy->exy", w[o, c], phi, basis)
                r0, c0 = out_sl[n].start + o * dn, in_sl[m].start + c * dm
                kernel[:, r0:r0 + dn, c0:c0 + dm] = block
    if conv.use_edge_weight:
        kernel = kernel * graph.edge_weight[:, None, None]
    msg = torch.einsum("eoc,ecd,ed->eo", kernel, _rho(in_type, graph.edge_transport), x[j])
    out = x.new_zeros(x.shape[0], out_type.dim).index_add(0, i, msg)
    if conv.normalize:
        deg = torch.bincount(i, minlength=x.shape[0]).clamp_min(1).to(x.dtype)
        out = out / deg[:, None]
    for n, offset, shape in conv._self_blocks:
        w = conv.self_weight[offset:offset + math.prod(shape)].view(shape)
        basis = self_basis(n, n, x.dtype)
        d = basis.shape[1]
        for o in range(shape[0]):
            for c in range(shape[1]):
                r0, c0 = out_sl[n].start + o * d, in_sl[n].start + c * d
                out[:, r0:r0 + d] = out[:, r0:r0 + d] + x[:, c0:c0 + d] @ (basis * w[o, c][:, None, None]).sum(0).T
    if conv.bias is not None and 0 in out_sl:
        out[:, out_sl[0]] = out[:, out_sl[0]] + conv.bias
    return out
