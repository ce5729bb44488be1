r"""Roofline terms of the layer benchmark: the work each layer must do, and what this machine reaches.

Work is counted from each layer's algorithm, 2 flops a multiply-add, in two parts:

* dense: the weight products, :math:`2 n k m` for each ``[n, k] @ [k, m]`` (their shapes are
  kept, so that ``torch.mm`` can be timed on the very same shapes);
* sparse: the products with the graph, :math:`2 \cdot \mathrm{nnz} \cdot \mathrm{columns}` for a
  sparse operator, and the per-edge arithmetic of message passing.

Bias additions, softmaxes and the fused path's stacking of (u, v) pairs are left out: they are
elementwise and under a few percent of either part. The backward pass of a dense product costs
twice its forward (the gradients of the features and of the weights), of a sparse product once
(the operator is geometry; only the features get a gradient), so
``flops_fwd_bwd = 3 dense + 2 sparse``.

Bytes are the least any implementation of the layer must move: features in and out, the
parameters, the edge list (two int32 an edge) and the per-edge geometry it reads; the backward
pass reads the output gradient, the input (for the weight gradient), the parameters and the edge
data again and writes the input and parameter gradients. The fused layers' sparse part is also
counted as what its CSR products must move: the operator (a value and an int32 column an entry,
int32 row pointers), the input columns and the product.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

INDEX_BYTES = 4        # int32: the edge list as the minimum, and the CSR indices meshgdl stores
COPY_CAP = 2**30       # beyond 1 GiB (twice this machine's 480 MiB L3) a larger copy adds memory, not information


@dataclass
class Work:
    """One layer's forward work on one graph; the backward follows the module's rules."""
    dense_flops: int
    sparse_flops: int
    mm_shapes: list = field(default_factory=list)   # forward weight products [n, k] @ [k, m]
    bytes_fwd: int = 0
    bytes_fwd_bwd: int = 0
    sparse_bytes_fwd: int = 0                        # fused layers: what their CSR products move
    sparse_bytes_bwd: int = 0

    @property
    def flops_fwd(self) -> int:
        return self.dense_flops + self.sparse_flops

    @property
    def flops_fwd_bwd(self) -> int:
        return 3 * self.dense_flops + 2 * self.sparse_flops

    def as_dict(self) -> dict:
        return {**asdict(self), "flops_fwd": self.flops_fwd, "flops_fwd_bwd": self.flops_fwd_bwd}


def min_bytes(n: int, e: int, c_in: int, c_out: int, params: int, per_edge: int, size: int) -> tuple[int, int]:
    """Least bytes of the forward and of forward+backward (module docstring), for ``per_edge``
    geometry numbers an edge and features of ``size`` bytes."""
    edges = e * (2 * INDEX_BYTES + per_edge * size)
    fwd = size * (n * c_in + n * c_out + params) + edges
    bwd = size * (n * c_out + 2 * n * c_in + 2 * params) + edges
    return fwd, fwd + bwd


def csr_bytes(rows: int, cols: int, nnz: int, columns: int, size: int) -> int:
    """Bytes of ``y = A x`` for a CSR ``A`` ``[rows, cols]``: ``A`` read, ``x [cols, columns]`` read,
    ``y [rows, columns]`` written."""
    return nnz * (size + INDEX_BYTES) + (rows + 1) * INDEX_BYTES + (cols + rows) * columns * size


def mm_flops(shapes) -> int:
    return sum(2 * n * k * m for n, k, m in shapes)


def layer_work(name: str, layer, graph, x) -> Work:
    """The :class:`Work` of benchmark layer ``name`` (``benchmarks/cases.py``) on ``graph`` for ``x``."""
    n, e, size = graph.num_nodes, graph.num_edges, x.element_size()
    params = sum(p.numel() for p in layer.parameters())
    kind = name.split("_")[0]
    if kind == "GemConv":
        return _gem_work(layer, n, e, params, size)
    if kind == "IsoConv":
        return _iso_work(layer, n, e, params, size)
    conv = layer.conv
    c_in, c_out = conv.in_channels, conv.out_channels
    fwd, fwd_bwd = min_bytes(n, e, c_in, c_out, params, 2 if kind == "SplineConv" else 0, size)
    loops = e + n  # PyG adds a self-loop to every node
    if kind == "GCNConv":
        # x W, then sum_j norm_ij (x W)_j over the edges and self-loops
        shapes = [(n, c_in, c_out)]
        return Work(mm_flops(shapes), 2 * loops * c_out, shapes, fwd, fwd_bwd)
    if kind == "FeaStConv":
        # per edge: u (x_j - x_i) and W x_j for all heads, then the softmax-weighted sum over heads
        # and the mean over neighbours: C_in + H C_out + (H - 1) C_out + C_out per edge
        h = conv.heads
        shapes = [(loops, c_in, h * c_out), (loops, c_in, h)]
        return Work(mm_flops(shapes), loops * (c_in + 2 * h * c_out), shapes, fwd, fwd_bwd)
    if kind == "SplineConv":
        # degree-1 B-splines in 2 dimensions: per edge the 4 active weight matrices, 2 C_in C_out
        # each, their weighted sum (2 C_out each) and the mean over neighbours; then the root weight
        shapes = [(n, c_in, c_out)]
        return Work(mm_flops(shapes), e * (8 * c_in * c_out + 9 * c_out), shapes, fwd, fwd_bwd)
    raise KeyError(name)


def _gem_work(layer, n, e, params, size) -> Work:
    """GemConv as the fused path computes it: per input frequency ``m`` one operator of ``K_m`` rows
    a node (:func:`~meshgdl.nn.functional.fused.fused_rows`: ``R S_m 2``, less ``R`` for ``m = 0``)
    with ``E K_m`` entries; for ``m > 0`` it is the real pair operator, ``[N K_m / 2, 2 N]`` on the
    stacked pairs ``[2 N, 2 mult_m]``. Then each run of aggregated channels that output frequency
    ``n`` reads times its own weight block, ``[N, width] @ [width, C_n]``, and the self term one
    frequency at a time, ``[N, C_in,n] @ [C_in,n, C_out,n]``."""
    from meshgdl.nn.functional.fused import fused_phases, fused_rows, phase_targets

    k_out = layer.out_type.max_frequency
    sparse = sparse_fwd = sparse_bwd = 0
    for m, mult in enumerate(layer.in_type.multiplicities):
        if not mult:
            continue
        k = fused_rows(m, fused_phases(m, k_out), layer.num_radial)
        rows, cols, columns = (n * k // 2, 2 * n, 2 * mult) if m else (n * k, n, mult)
        sparse += 2 * e * k * columns
        sparse_fwd += csr_bytes(rows, cols, e * k, columns, size)
        sparse_bwd += csr_bytes(cols, rows, e * k, columns, size)
    c_in, c_out = layer.in_type.dim, layer.out_type.dim
    in_dim, out_dim = ({f: sl.stop - sl.start for f, sl in t.slices()} for t in (layer.in_type, layer.out_type))
    shapes = [(n, width, out_dim[f]) for targets in phase_targets(layer) for f, width in targets if out_dim.get(f)]
    shapes += [(n, in_dim[f], out_dim[f]) for f, _, _ in layer._self_blocks]
    per_edge = 2 + (1 if layer.num_radial else 0) + (1 if layer.use_edge_weight else 0)  # theta, a, (length, w)
    fwd, fwd_bwd = min_bytes(n, e, c_in, c_out, params, per_edge, size)
    return Work(mm_flops(shapes), sparse, shapes, fwd, fwd_bwd, sparse_fwd, sparse_bwd)


def _iso_work(layer, n, e, params, size) -> Work:
    """IsoConv: one operator with ``R`` entries an edge on ``C_in`` columns, then
    ``[N, R C_in] @ [R C_in, C_out]`` and the root ``[N, C_in] @ [C_in, C_out]``."""
    radial, c_in, c_out = max(layer.num_radial, 1), layer.in_channels, layer.out_channels
    shapes = [(n, radial * c_in, c_out), (n, c_in, c_out)]
    per_edge = (1 if layer.num_radial else 0) + (1 if layer.use_edge_weight else 0)
    fwd, fwd_bwd = min_bytes(n, e, c_in, c_out, params, per_edge, size)
    return Work(mm_flops(shapes), 2 * e * radial * c_in, shapes, fwd, fwd_bwd,
                csr_bytes(n * radial, n, e * radial, c_in, size), csr_bytes(n, n * radial, e * radial, c_in, size))


def sparse_part(name: str, layer, graph):
    """The sparse part of a fused GemConv alone, as a function of ``x`` (``None`` for other layers):
    timing it and the whole layer splits the time into sparse and dense."""
    if not name.startswith("GemConv") or not getattr(layer, "fused", False):
        return None
    from meshgdl.nn.functional.fused import gem_aggregate

    # one part an input frequency; the layer multiplies each by its weight block, here they are
    # concatenated to give the timer one output (a copy of the aggregate, counted as sparse work)
    return lambda x: torch.cat(gem_aggregate(layer, x, graph), -1)


def dense_part(name: str, layer, graph, x):
    """The dense part of a fused GemConv alone, as a function of ``x`` (``None`` for other layers):
    the layer's update (weight blocks, self term, bias) on its aggregate, computed once beforehand
    and held as leaves that take gradients, so that only the dense products are timed."""
    if sparse_part(name, layer, graph) is None:
        return None
    from meshgdl.nn.functional.fused import gem_aggregate

    widths = [sl.stop - sl.start for _, sl in layer._in]
    with torch.no_grad():
        parts = [p.clone() for p in gem_aggregate(layer, x.split(widths, -1), graph)]

    def dense(x):
        leaves = [p.detach().requires_grad_(x.requires_grad) for p in parts]
        return layer._fused_update(leaves, x.split(widths, -1))
    return dense


class Baselines:
    """What this machine reaches, timed once per shape and size with ``timer(fn) -> seconds``:
    ``torch.mm`` on a layer's dense shapes, and ``Tensor.copy_`` of a buffer of the bytes moved."""

    def __init__(self, timer, device, dtype=torch.float32):
        self.timer, self.device, self.dtype = timer, torch.device(device), dtype
        self.mm, self.copy = {}, {}

    def _mm(self, n, k, m) -> tuple[float, float]:
        """Seconds of ``[n, k] @ [k, m]``, and of it with its two backward products."""
        key = f"{n}x{k}x{m}"
        if key not in self.mm:
            a, b = (torch.randn(s, device=self.device, dtype=self.dtype) for s in ((n, k), (k, m)))
            dy = torch.randn(n, m, device=self.device, dtype=self.dtype)
            fwd = self.timer(lambda: torch.mm(a, b))
            bwd = self.timer(lambda: (torch.mm(dy, b.T), torch.mm(a.T, dy)))
            self.mm[key] = {"forward_ms": fwd * 1e3, "forward_backward_ms": (fwd + bwd) * 1e3}
        return self.mm[key]["forward_ms"] / 1e3, self.mm[key]["forward_backward_ms"] / 1e3

    def mm_rate(self, shapes) -> tuple[float, float]:
        """flop/s of ``torch.mm`` over all ``shapes`` together: forward, and forward+backward."""
        times = [self._mm(*s) for s in shapes]
        flops = mm_flops(shapes)
        return flops / sum(t[0] for t in times), 3 * flops / sum(t[1] for t in times)

    def copy_rate(self, nbytes: int) -> float:
        """Bytes/s of ``dst.copy_(src)`` counting the read and the write, for a buffer of ``nbytes``
        (at most 1 GiB)."""
        size = torch.empty((), dtype=self.dtype).element_size()
        buffer = max(1, min(nbytes, COPY_CAP) // size) * size
        if buffer not in self.copy:
            src = torch.randn(buffer // size, device=self.device, dtype=self.dtype)
            dst = torch.empty_like(src)
            self.copy[buffer] = self.timer(lambda: dst.copy_(src)) * 1e3
        return 2 * buffer / (self.copy[buffer] / 1e3)

    def record(self) -> dict:
        """Milliseconds: ``mm`` by shape ``"n x k x m"``, ``copy`` by buffer bytes."""
        return {"mm": self.mm, "copy_ms": {str(b): ms for b, ms in self.copy.items()}}


def roofline(row: dict, base: Baselines) -> dict:
    """Rates of one benchmark row (with its :class:`Work` fields) and their fractions of the machine's."""
    out = {}
    for p, ms in (("fwd", row["forward_ms"]), ("fwd_bwd", row["forward_backward_ms"])):
        t = ms / 1e3
        mm = base.mm_rate(row["mm_shapes"])[p == "fwd_bwd"] if row["mm_shapes"] else math.nan
        out[f"gflops_{p}"] = row[f"flops_{p}"] / t / 1e9
        out[f"gbs_{p}"] = row[f"bytes_{p}"] / t / 1e9
        out[f"mm_gflops_{p}"] = mm / 1e9
        out[f"copy_gbs_{p}"] = base.copy_rate(row[f"bytes_{p}"]) / 1e9
        out[f"frac_mm_{p}"] = out[f"gflops_{p}"] / out[f"mm_gflops_{p}"]
        out[f"frac_copy_{p}"] = out[f"gbs_{p}"] / out[f"copy_gbs_{p}"]
        sparse_ms, dense_ms = (row.get(f"{part}_{'forward' if p == 'fwd' else 'forward_backward'}_ms")
                               for part in ("sparse", "dense"))
        if sparse_ms is None:
            continue
        # each part timed alone (the sparse aggregation, the update on a fixed aggregate)
        moved = row["sparse_bytes_fwd"] + (row["sparse_bytes_bwd"] if p == "fwd_bwd" else 0)
        dense_flops = row["dense_flops"] * (3 if p == "fwd_bwd" else 1)
        out[f"sparse_gbs_{p}"] = moved / (sparse_ms / 1e3) / 1e9
        out[f"sparse_frac_copy_{p}"] = out[f"sparse_gbs_{p}"] * 1e9 / base.copy_rate(moved)
        out[f"dense_gflops_{p}"] = dense_flops / (dense_ms / 1e3) / 1e9 if dense_ms > 0 else math.nan
        out[f"dense_frac_mm_{p}"] = out[f"dense_gflops_{p}"] / out[f"mm_gflops_{p}"]
    return out
