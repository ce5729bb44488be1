r"""Multi-head self-attention inside windows of consecutive NESTED HEALPix pixels (HEAL-SWIN)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...field_type import FieldType
from ...geometry.healpix_windows import SHIFTS
from .._input import check_features
from .healpix_sky import HealpixSky


def window_offsets(window_order: int) -> Tensor:
    """``[T, 2]``: the (x, y) of each of the :math:`T = 4^w` NESTED positions in a window (Morton
    decoding: x from the even bits, y from the odd bits, as in healpy's ``pix2xyf``)."""
    t = torch.arange(4 ** window_order)
    bits = torch.arange(window_order)
    x = ((t[:, None] >> (2 * bits)) & 1) << bits
    y = ((t[:, None] >> (2 * bits + 1)) & 1) << bits
    return torch.stack([x.sum(1), y.sum(1)], dim=1)


class _Relayout(torch.autograd.Function):
    r"""``x[:, index]`` for ``x`` :math:`[B, N, C]`, reading zeros where ``index`` is ``N``, when
    every row of ``x`` is read exactly once: its adjoint is then the same gather by ``adjoint``
    (the inverse permutation), cheaper than autograd's scatter into zeros."""

    @staticmethod
    def forward(ctx, x: Tensor, index: Tensor, adjoint: Tensor) -> Tensor:
        ctx.save_for_backward(adjoint)
        return _take(x, index)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _take(grad, ctx.saved_tensors[0]), None, None


def _take(x: Tensor, index: Tensor) -> Tensor:
    if len(index) > x.shape[1]:  # the windows hold padding: index N reads a zero row
        x = torch.cat([x, x.new_zeros(x.shape[0], 1, x.shape[2])], dim=1)
    return x.index_select(1, index)


class HealpixWindowAttention(nn.Module):
    r"""Window attention on HEALPix, from `HEAL-SWIN <https://arxiv.org/abs/2307.07313>`_: each window
    holds :math:`T = 4^w` consecutive NESTED tokens (a :math:`2^w \times 2^w` square of one base
    pixel), and inside each window, for each head,

    .. math::
        \mathrm{softmax}\Big(\frac{Q K^\top}{\sqrt{d}} + B + M\Big) V, \qquad
        B_{tu} = b[x_t - x_u, y_t - y_u],

    with :math:`(x_t, y_t)` a token's place in its window (so one table :math:`b` serves all base
    pixels) and :math:`M` the mask of shifted windows (:math:`-\infty` between tokens that the
    shift brought from far apart, see :mod:`meshgdl.geometry.healpix_windows`). With
    ``cosine=True`` (SWIN v2) the logits are :math:`\cos(q, k)\,\tau_h + B` with a learned
    per-head :math:`\tau_h \le 100`. Unshifted windows of a full sky are a reshape of the input;
    shifted ones a gather. The attention runs in
    :func:`torch.nn.functional.scaled_dot_product_attention`, except for a CPU forward that
    records gradients, where SWIN's explicit softmax is faster (PyTorch's fused CPU kernels have
    no gradient for the bias).

    Args:
        channels (int): token width :math:`C`.
        heads (int): attention heads; must divide ``channels``.
        window_order (int): :math:`w`.
        shift (str, optional): ``None``, ``"grid"`` or ``"ring"``. (default: ``None``)
        cosine (bool): scaled cosine attention. (default: ``False``)
        qkv_bias (bool): biases in the query, key and value maps. (default: ``True``)
        dropout (float): dropout on the attention weights. (default: ``0.0``)

    Shapes:
        - input: :math:`[N, C]` or :math:`[B, N, C]` on the tokens of ``graph`` (a HEALPix graph in
          NESTED order or a :class:`~meshgdl.nn.attention.healpix_sky.HealpixSky`).
        - output: same as the input.
    """

    def __init__(self, channels: int, heads: int, window_order: int, shift: str | None = None,
                 cosine: bool = False, qkv_bias: bool = True, dropout: float = 0.0):
        super().__init__()
        if channels % heads:
            raise ValueError(f"heads ({heads}) must divide channels ({channels})")
        if shift not in SHIFTS:
            raise ValueError(f"shift must be one of {SHIFTS}, got {shift!r}")
        if shift is not None and window_order < 1:
            raise ValueError("a shifted window needs window_order >= 1 (windows of 4 or more tokens)")
        self.channels, self.heads, self.window_order, self.shift = channels, heads, window_order, shift
        self.cosine, self.dropout = cosine, dropout
        self.qkv = nn.Linear(channels, 3 * channels, bias=qkv_bias)
        self.proj = nn.Linear(channels, channels)
        side = 1 << window_order
        self.bias_table = nn.Parameter(torch.zeros((2 * side - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        d = window_offsets(window_order)
        rel = d[:, None, :] - d[None, :, :] + side - 1
        self.register_buffer("bias_index", rel[..., 0] * (2 * side - 1) + rel[..., 1], persistent=False)
        self.logit_scale = nn.Parameter(torch.full((heads, 1, 1), math.log(10.0))) if cosine else None

    def position_bias(self) -> Tensor:
        """``[heads, T, T]``: the relative position bias :math:`B`."""
        return self.bias_table[self.bias_index].permute(2, 0, 1)

    def forward(self, x: Tensor, graph) -> Tensor:
        sky = HealpixSky.of(graph)
        check_features(self, x, FieldType.scalars(self.channels), sky.num_nodes, batched=True)
        plan = sky.windows(self.window_order, self.shift, x.device)
        single = x.dim() == 2
        if single:
            x = x[None]
        b, n, c = x.shape
        if plan.index is not None:
            x = _Relayout.apply(x, plan.index, plan.inverse)
        q, k, v = self.qkv(x).view(b, plan.windows, plan.tokens, 3, self.heads, c // self.heads).permute(
            3, 0, 1, 4, 2, 5)                                                  # [3, B, W, h, T, d] each
        bias = self.position_bias().to(x.dtype)
        scale = q.shape[-1] ** -0.5
        if self.cosine:
            q = F.normalize(q, dim=-1) * self.logit_scale.clamp(max=math.log(100.0)).exp().to(x.dtype)
            k = F.normalize(k, dim=-1)
            scale = 1.0
        blocked = None
        if plan.clean < plan.windows:
            blocked = torch.zeros(plan.allowed.shape, dtype=x.dtype, device=x.device).masked_fill(
                ~plan.allowed, float("-inf"))                                  # [W - clean, T, T]
        p = self.dropout if self.training else 0.0
        # PyTorch's CPU SDPA kernels give no gradient for a mask; with a learned bias SDPA falls back
        # to a generic path that is slower than SWIN's explicit softmax, forward and backward
        if x.device.type == "cpu" and torch.is_grad_enabled() and bias.requires_grad:
            logits = (q * scale) @ k.transpose(-1, -2) + bias                  # [B, W, h, T, T]
            if blocked is not None:
                logits[:, plan.clean:] += blocked[:, None]
            out = (F.dropout(logits.softmax(-1), p) @ v).transpose(2, 3).reshape(b, -1, c)
        else:
            out = self._fused(q, k, v, bias, blocked, plan.clean, scale, p).view(b, -1, c)
        out = self.proj(out)
        if plan.inverse is not None:
            out = _Relayout.apply(out, plan.inverse, plan.index)
        return out[0] if single else out

    def _fused(self, q, k, v, bias, blocked, clean, scale, p) -> Tensor:
        """SDPA on the clean windows and on the masked ones, written into one ``[B, W, T, h, d]``
        buffer laid out for the projection (no cat, no transpose copy)."""
        b, w, h, t, d = q.shape
        out = q.new_empty(b, w, t, h, d)
        parts = (q.split([clean, w - clean], 1), k.split([clean, w - clean], 1), v.split([clean, w - clean], 1))
        for i, (qi, ki, vi) in enumerate(zip(*parts)):
            if qi.shape[1] == 0:
                continue
            mask = bias if i == 0 else bias + blocked[:, None]
            # SDPA's fused CPU kernel takes a mask only with the batch shape of the queries; an
            # expanded view costs no memory
            mask = mask.expand(b, qi.shape[1], h, t, t).flatten(0, 1)
            y = F.scaled_dot_product_attention(qi.flatten(0, 1), ki.flatten(0, 1), vi.flatten(0, 1),
                                               attn_mask=mask, dropout_p=p, scale=scale)
            (out[:, clean:] if i else out[:, :clean]).transpose(2, 3).copy_(y.unflatten(0, (b, -1)))
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.channels}, heads={self.heads}, window_order={self.window_order}, shift={self.shift!r}"
                + (", cosine=True" if self.cosine else "") + ")")
