r"""Lifting convolution: scalar fields to regular fields of the dihedral group :math:`D_N`."""
from __future__ import annotations

from .cn_lifting_conv import CNLiftingConv
from .dihedral_field_type import DihedralFieldType


class DNLiftingConv(CNLiftingConv):
    r"""The lifting layer of a :math:`D_N` group CNN (`Cohen & Welling 2016
    <https://arxiv.org/abs/1602.07576>`_) on a framed graph: one filter, turned to ``N``
    orientations and reflected,

    .. math::
        y_{i, o, h} = \sum_j w_{ij} \sum_c \psi_{oc}(h^{-1}\theta_{ij}) x_{j, c}
        + \sum_c \Theta_{oc} x_{i, c} + b_o, \qquad
        (\rho^r \mu^s)^{-1}\theta = (-1)^s (\theta - 2\pi r / N),

    with :math:`\psi_{oc}` a Fourier series of bandwidth ``L`` and :math:`w_{ij} = 1/\deg i`. The
    output is a :class:`~meshgdl.nn.group.dihedral_field_type.DihedralFieldType`: turning the
    frames by :math:`2\pi q / N` or reflecting them relabels the ``2 N`` orientations, which makes
    the layer exactly equivariant to the rotations and reflections of a grid (or of HEALPix in the
    grid gauge, :func:`~meshgdl.geometry.healpix_grid_graph`) that map it onto itself.

    Args:
        in_channels (int): input scalars.
        out_channels (int): output channels (each with ``2 N`` orientations).
        order (int): :math:`N`.
        bandwidth (int): :math:`L`, the highest angular frequency of the filter (default: ``4``)
        bias (bool): learn a bias per output channel, shared by its orientations (default: ``True``)

    Shapes:
        - input: :math:`[N_\text{nodes}, C_\text{in}]`, output: :math:`[N_\text{nodes}, 2 C_\text{out} N]`.
    """

    field_type = DihedralFieldType
