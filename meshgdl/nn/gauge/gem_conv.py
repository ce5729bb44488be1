r"""Gauge-equivariant mesh convolution (GEM-CNN, de Haan et al. 2020)."""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import Parameter

from ...field_type import FieldType
from ..functional.gem_basis import gaussian_radial, num_basis, phase_coefficients, phases, self_basis
from ..functional.fused import fused_columns, gem_aggregate, phase_targets
from ..functional.fused_update import UpdatePlan, fused_update
from .gauge_message_passing import GaugeMessagePassing


class GemConv(GaugeMessagePassing):
    r"""The gauge-equivariant convolution of `de Haan et al. (2020)
    <https://arxiv.org/abs/2003.05425>`_ with the complete analytic kernel basis:

    .. math::
        \mathbf{f}'_i = \sum_{j \in \mathcal{N}(i)} w_{ij}\, K(\theta_{ij}, \ell_{ij})\,
        \rho_\text{in}(a_{ji})\, \mathbf{f}_j + K_\text{self} \mathbf{f}_i + \mathbf{b},

    where :math:`\theta_{ij}` is the angle and :math:`\ell_{ij}` the length of ``edge_logmap``,
    :math:`K(\theta, \ell) = \sum_{b, r} W_{b r} \phi_r(\ell) K_b(\theta)` runs over the basis of
    :mod:`meshgdl.nn.functional.gem_basis` (every pair of input and output frequencies) and the
    Gaussian radial profiles :math:`\phi_r` (one constant profile when ``num_radial = 0``),
    :math:`K_\text{self}` is the :math:`\theta`-independent basis, and the bias :math:`\mathbf{b}`
    sits on scalar output channels only. The weights are
    :math:`w_{ij} = (\text{edge\_weight}_{ij} \text{ or } 1) / \deg(i)` (without :math:`1/\deg` when
    ``normalize=False``).

    The learned weights do not depend on the edge, so the layer aggregates
    :math:`A_{m,s}(i) = \sum_j w_{ij} \phi_r(\ell_{ij}) e^{i s\theta_{ij}} \rho_m(a_{ji}) z_j` over a
    few fixed phases ``s`` first and applies the weights once per node: no per-edge
    :math:`C_\text{out} \times C_\text{in}` tensor is ever formed.
    ``meshgdl.nn.functional.gem_reference`` is the slow per-edge-matrix version it is tested against.

    Args:
        in_type (FieldType): input field type.
        out_type (FieldType): output field type.
        num_radial (int): number of Gaussian radial profiles of the edge length; ``0`` for none,
            which suits one-ring neighbourhoods (default: ``0``)
        cutoff (float, optional): the largest profile centre; required when ``num_radial > 0``.
        use_edge_weight (bool): multiply messages by ``graph.edge_weight`` (default: ``False``)
        normalize (bool): divide the sum over neighbours by the in-degree (default: ``True``)
        self_interaction (bool): add :math:`K_\text{self} f_i` (default: ``True``)
        bias (bool): learn a bias on the scalar output channels (default: ``True``)
        fused (bool): aggregate with cached sparse operators
            (:mod:`meshgdl.nn.functional.fused`); ``False`` runs PyG message passing. Both give the
            same result; the fused path is faster, needs far less memory, also takes features
            :math:`[B, N, C]` over one shared graph, and compiles with
            ``torch.compile(fullgraph=True)``. (default: ``True``)

    Shapes:
        - input: ``x`` :math:`[N, C_\text{in}]` (or :math:`[B, N, C_\text{in}]` on the fused
          path) with :math:`C_\text{in}` = ``in_type.dim`` and :math:`N` = ``graph.num_nodes``,
          checked first; ``graph`` with ``edge_index``, ``edge_logmap``, ``edge_transport`` (and
          ``edge_weight`` if used). :math:`E = 0` and :math:`N = 0` are allowed.
        - output: :math:`[N, C_\text{out}]` (or :math:`[B, N, C_\text{out}]`)

    Dtypes:
        float64, float32, float16 and bfloat16 (the layer converted with ``.to(dtype)``), and
        ``torch.autocast``. The fused path's sparse products run in float32 for half-precision
        inputs (PyTorch has no half CSR kernel on CPU) and are cast back; message passing
        computes edge angles and lengths in the graph's dtype, the rest in the input's.
    """

    def __init__(self, in_type: FieldType, out_type: FieldType, num_radial: int = 0, cutoff: float | None = None,
                 use_edge_weight: bool = False, normalize: bool = True, self_interaction: bool = True,
                 bias: bool = True, fused: bool = True):
        super().__init__(in_type, out_type, aggr="mean" if normalize else "add")
        if num_radial < 0 or (num_radial > 0 and (cutoff is None or not cutoff > 0)):
            raise ValueError("num_radial > 0 needs a positive cutoff (the largest edge length to resolve), "
                             f"got num_radial={num_radial}, cutoff={cutoff}")
        self.num_radial, self.cutoff = num_radial, cutoff
        self.use_edge_weight, self.normalize, self.self_interaction = use_edge_weight, normalize, self_interaction
        self.fused = fused
        radial = max(num_radial, 1)
        k_out = self.out_type.max_frequency
        self._in = [(m, sl) for m, sl in in_type.slices()]
        self._out = [(n, sl) for n, sl in self.out_type.slices()]
        for m, _ in self._in:
            self.register_buffer(f"_phase_{m}", torch.tensor(phases(m, k_out), dtype=torch.float64), persistent=False)
        # (n, m, offset, shape) of each weight block, and the fixed coefficients reading the phases
        self._blocks, offset = [], 0
        for n, _ in self._out:
            fan = sum(in_type.multiplicities[m] * radial * num_basis(m, n) for m, _ in self._in)
            for m, _ in self._in:
                shape = (self.out_type.multiplicities[n], in_type.multiplicities[m] * radial, num_basis(m, n))
                self._blocks.append((n, m, offset, shape, fan))
                self.register_buffer(f"_coef_{n}_{m}", phase_coefficients(m, n, k_out).clone(), persistent=False)
                offset += math.prod(shape)
        self.weight = Parameter(torch.empty(offset))
        self._self_blocks, offset = [], 0
        for n, _ in self._out:
            if self_interaction and n <= in_type.max_frequency and in_type.multiplicities[n]:
                basis = self_basis(n, n)
                shape = (self.out_type.multiplicities[n], in_type.multiplicities[n], basis.shape[0])
                self._self_blocks.append((n, offset, shape))
                self.register_buffer(f"_self_{n}", basis.clone(), persistent=False)
                offset += math.prod(shape)
        self.self_weight = Parameter(torch.empty(offset))
        self.bias = Parameter(torch.empty(self.out_type.multiplicities[0])) if bias else None
        self._scalar_out = self._out[0][1] if self._out[0][0] == 0 else None
        # a buffer, so that the column order follows the layer to its device
        self.register_buffer("_fused_columns", fused_columns(self), persistent=False)
        self._update_plan = self._plan_update()
        self.reset_parameters()

    def reset_parameters(self):
        """Unit-scale activations: Gaussian weights with variance ``1 / fan_in`` for the self term and
        ``0.5 / fan_in`` for the neighbour term (fan_in: basis terms feeding one output channel).

        The neighbour term is a mean over neighbours: for independent neighbours it adds about
        ``0.5 / deg`` to the output variance, for smooth fields up to ``0.5``. Measured on an
        icosphere with 16 copies of frequencies 0..2: standard deviations 1.07, 1.08, 1.12, 1.19
        after 1..4 stacked layers from unit-variance input.
        """
        has_self = {n for n, _, _ in self._self_blocks}
        with torch.no_grad():
            for n, m, offset, shape, fan in self._blocks:
                var = (0.5 if n in has_self else 1.0) / fan
                self.weight[offset:offset + math.prod(shape)].normal_(0.0, math.sqrt(var))
            for n, offset, shape in self._self_blocks:
                fan = shape[1] * shape[2]
                self.self_weight[offset:offset + math.prod(shape)].normal_(0.0, math.sqrt(1.0 / fan))
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: Tensor, graph) -> Tensor:
        if self.fused and self._fusable():
            self._check_input(x, graph, batched=True)
            # split once: the backward writes x's gradient in one pass (slices would each fill a zero copy)
            pieces = x.split([sl.stop - sl.start for _, sl in self._in], -1)
            return self._fused_update(gem_aggregate(self, pieces, graph), pieces)
        return super().forward(x, graph)

    @classmethod
    def _fusable(cls) -> bool:
        # a subclass that changes transport or message must run its own code, not the fused path
        return cls.transport is GemConv.transport and cls.message is GemConv.message

    def message(self, x_j: Tensor, edge_theta: Tensor, edge_length: Tensor, edge_weight: Tensor | None) -> Tensor:
        scale = torch.ones_like(edge_length)[:, None]
        if self.num_radial:
            scale = gaussian_radial(edge_length, self.num_radial, self.cutoff)
        if self.use_edge_weight:
            if edge_weight is None:
                raise ValueError("GemConv(use_edge_weight=True) needs graph.edge_weight; the graph has none")
            scale = scale * edge_weight[:, None]
        parts = []
        for m, sl in self._in:
            s = getattr(self, f"_phase_{m}").to(edge_theta.dtype)
            angle = edge_theta[:, None] * s                                     # [E, S]
            c, sn = torch.cos(angle)[:, None, None, :], torch.sin(angle)[:, None, None, :]
            if m == 0:
                u = x_j[:, sl][:, :, None, None] * scale[:, None, :, None]      # [E, mult, R, 1]
                re, im = u * c, u * sn
            else:
                pairs = x_j[:, sl].unflatten(-1, (-1, 2))
                u = pairs[..., 0][:, :, None, None] * scale[:, None, :, None]
                v = pairs[..., 1][:, :, None, None] * scale[:, None, :, None]
                re, im = u * c - v * sn, u * sn + v * c
            parts.append(torch.stack([re, im], -1).flatten(1))
        return torch.cat(parts, -1)

    def update(self, aggr_out: Tensor, x: Tensor) -> Tensor:
        out = aggr_out @ self._neighbour_matrix().T
        if self._self_blocks:
            out = out + x @ self._self_matrix().T
        if self.bias is not None and self._scalar_out is not None:
            out = torch.cat([out[..., self._scalar_out] + self.bias, out[..., self._scalar_out.stop:]], -1)
        return out

    def _fused_update(self, parts: list[Tensor], pieces: tuple[Tensor, ...]) -> Tensor:
        """:meth:`update` of the fused path's parts (one an input frequency) and of ``x`` split by
        input frequency, one block of channels an output frequency: each run of aggregated channels
        times the weight rows of the one output frequency that reads it, the self term's block
        diagonal one block at a time and the bias in the first product, so that none of the
        weights' zero blocks is multiplied (:mod:`~meshgdl.nn.functional.fused_update`)."""
        weight = self._neighbour_matrix()[:, self._fused_columns]
        blocks = [block for _, block in self._self_matrices()]
        bias = self.bias if self._update_plan.bias is not None else None
        return fused_update(self._update_plan, weight, bias, parts, pieces, blocks)

    def _plan_update(self) -> UpdatePlan:
        """The layout of :func:`~meshgdl.nn.functional.fused_update.fused_update` for this layer."""
        runs, start = [], 0
        for targets in phase_targets(self):
            column, part = 0, []
            for n, width in targets:
                part.append((n, column, width, start))
                column, start = column + width, start + width
            runs.append(tuple(part))
        pieces = {m: q for q, (m, _) in enumerate(self._in)}
        bias = None
        if self.bias is not None and self._scalar_out is not None:
            bias = (self._scalar_out.start, self._scalar_out.stop)
        return UpdatePlan(out=tuple((n, sl.start, sl.stop) for n, sl in self._out), runs=tuple(runs),
                          self_terms=tuple((n, pieces[n]) for n, _, _ in self._self_blocks), bias=bias)

    def _neighbour_matrix(self) -> Tensor:
        """The weights applied to the aggregated phases: ``[C_out, D]``."""
        rows, cols = {}, []
        for n, m, offset, shape, _ in self._blocks:
            w = self.weight[offset:offset + math.prod(shape)].view(shape)
            coef = getattr(self, f"_coef_{n}_{m}").to(w.dtype)                  # [B, d_n, S, 2]
            radial = shape[1] // self.in_type.multiplicities[m]
            w = w.unflatten(1, (-1, radial))                                    # [o, c, r, B]
            block = torch.einsum("ocrb,bxst->oxcrst", w, coef)
            rows.setdefault(n, []).append(block.reshape(block.shape[0] * block.shape[1], -1))
        return torch.cat([torch.cat(r, 1) for r in rows.values()], 0)

    def _self_matrix(self) -> Tensor:
        """The self-interaction ``[C_out, C_in]``, block diagonal in frequency."""
        out = self.self_weight.new_zeros(self.out_type.dim, self.in_type.dim)
        out_sl, in_sl = dict(self._out), dict(self._in)
        for n, block in self._self_matrices():
            out[out_sl[n], in_sl[n]] = block
        return out

    def _self_matrices(self):
        """``(n, [C_out_n, C_in_n])``: the blocks of :meth:`_self_matrix`."""
        for n, offset, shape in self._self_blocks:
            w = self.self_weight[offset:offset + math.prod(shape)].view(shape)
            basis = getattr(self, f"_self_{n}").to(w.dtype)                     # [B, d, d]
            block = torch.einsum("ocb,bxy->oxcy", w, basis)
            yield n, block.reshape(block.shape[0] * block.shape[1], -1)

    def __repr__(self) -> str:
        radial = f", num_radial={self.num_radial}, cutoff={self.cutoff}" if self.num_radial else ""
        return f"GemConv({self.in_type}, {self.out_type}{radial})"

