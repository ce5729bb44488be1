r"""The gauge-equivariant 1x1 layer: mixes channels of equal frequency at each node."""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import Parameter

from ...field_type import FieldType
from ..functional.gem_basis import self_basis


class EquivariantLinear(torch.nn.Module):
    r"""A per-node linear map between field types that commutes with every gauge transformation:

    .. math::
        s' = W_0 s + b, \qquad z'_n = \sum_c (W_{n,c} + i\, V_{n,c})\, z_c

    for scalars :math:`s` and, for each frequency ``k > 0``, pairs written as complex numbers
    :math:`z` (a rotation and a scaling per pair of copies; frequencies never mix). The bias sits
    on scalars only: a bias on a pair would pick a direction and break equivariance (the mistake
    of the residual blocks in the published GEM-CNN code).

    Args:
        in_type (FieldType): input field type.
        out_type (FieldType): output field type.
        bias (bool): learn a bias on the scalar outputs (default: ``True``)

    Shapes:
        - input: :math:`[N, C_\text{in}]`, output: :math:`[N, C_\text{out}]`.
    """

    def __init__(self, in_type: FieldType, out_type: FieldType, bias: bool = True):
        super().__init__()
        if not isinstance(in_type, FieldType) or not isinstance(out_type, FieldType):
            raise TypeError("in_type and out_type must be meshgdl.FieldType, e.g. FieldType([4, 2])")
        self.in_type, self.out_type = in_type, out_type
        self._blocks, offset = [], 0
        in_sl, out_sl = dict(in_type.slices()), dict(out_type.slices())
        for k, sl in out_sl.items():
            if k in in_sl:
                shape = (out_type.multiplicities[k], in_type.multiplicities[k], 1 if k == 0 else 2)
                self._blocks.append((k, out_sl[k], in_sl[k], offset, shape))
                offset += math.prod(shape)
        self.register_buffer("_scalar_basis", self_basis(0, 0), persistent=False)
        self.register_buffer("_pair_basis", self_basis(1, 1), persistent=False)
        self.weight = Parameter(torch.empty(offset))
        self.bias = Parameter(torch.zeros(out_type.multiplicities[0])) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        with torch.no_grad():
            for k, _, _, offset, shape in self._blocks:
                self.weight[offset:offset + math.prod(shape)].normal_(0.0, math.sqrt(1.0 / (shape[1] * shape[2])))
            if self.bias is not None:
                self.bias.zero_()

    def matrix(self) -> Tensor:
        """The ``[C_out, C_in]`` matrix, block diagonal in frequency."""
        out = self.weight.new_zeros(self.out_type.dim, self.in_type.dim)
        for k, osl, isl, offset, shape in self._blocks:
            w = self.weight[offset:offset + math.prod(shape)].view(shape)
            basis = (self._scalar_basis if k == 0 else self._pair_basis).to(w.dtype)
            block = torch.einsum("ocb,bxy->oxcy", w, basis)
            out[osl, isl] = block.reshape(osl.stop - osl.start, isl.stop - isl.start)
        return out

    def forward(self, x: Tensor, graph=None) -> Tensor:
        out = x @ self.matrix().T
        if self.bias is not None and self.out_type.multiplicities[0]:
            s = self.out_type.multiplicities[0]
            out = torch.cat([out[:, :s] + self.bias, out[:, s:]], -1)
        return out

    def __repr__(self) -> str:
        return f"EquivariantLinear({self.in_type}, {self.out_type})"
