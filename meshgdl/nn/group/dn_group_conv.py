r"""Group convolution between regular fields of the dihedral group :math:`D_N`."""
from __future__ import annotations

from .cn_group_conv import CNGroupConv
from .dihedral_field_type import DihedralFieldType


class DNGroupConv(CNGroupConv):
    r"""A :math:`D_N` group convolution with regular representations on a framed graph:

    .. math::
        y_{i, o, h} = \sum_j w_{ij} \sum_{c, g} \psi_{ocg}(h^{-1}\theta_{ij})\,
        \tilde x_{j, c, h g} + \sum_{c, g} \Theta_{ocg}\, x_{i, c, h g} + b_o,

    :math:`h, g` running over the ``2 N`` elements of :math:`D_N`
    (:class:`~meshgdl.nn.group.dihedral_field_type.DihedralFieldType`),
    :math:`(\rho^r \mu^s)^{-1}\theta = (-1)^s (\theta - 2\pi r / N)`, :math:`\tilde x_j` the
    neighbour's field transported to i (transports must be multiples of :math:`2\pi / N`), and
    :math:`w_{ij} = 1/\deg i`. Seeing every frame through an element :math:`k` of :math:`D_N`
    relabels input and output alike (:math:`x'_h = x_{kh}`), so the layer is exactly equivariant
    under those gauges and under the symmetries of a grid built from them: its rotations by
    :math:`2\pi / N` and its reflections.

    Args:
        in_channels (int): input channels (each with ``2 N`` orientations).
        out_channels (int): output channels.
        order (int): :math:`N`.
        bandwidth (int): :math:`L` (default: ``4``)
        bias (bool): learn a bias per output channel (default: ``True``)

    Shapes:
        - input: :math:`[N_\text{nodes}, 2 C_\text{in} N]`, output: :math:`[N_\text{nodes}, 2 C_\text{out} N]`.
    """

    field_type = DihedralFieldType
