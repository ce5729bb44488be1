r"""Aggregation kernels: the one place where messages are summed into nodes.

Backends, chosen once per process with :func:`set_backend` (or the ``MESHGDL_BACKEND`` variable):

* ``"native"`` (default): ``Tensor.index_add_``, what PyG's own ``scatter`` uses for sums.
* ``"torch_scatter"``: the ``torch-scatter`` extension, when installed (``pip install
  'meshgdl[scatter]'``; detected once, by :func:`has_torch_scatter`).
* ``"csr"``: a sparse CSR matrix times a dense matrix, sorted by receiver. Deterministic on every
  device, and the path the fused layers use for their fixed per-edge coefficients.

:func:`set_deterministic` makes every sum use the CSR path, so that training is reproducible
bit for bit on GPUs too (atomic scatter adds are not).
"""
from __future__ import annotations

import math
import os
import warnings
from functools import lru_cache

import torch
from torch import Tensor

BACKENDS = ("native", "torch_scatter", "csr")
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
HALF_DTYPES = (torch.float16, torch.bfloat16)
_state = {"backend": os.environ.get("MESHGDL_BACKEND", "native"), "deterministic": False}


@lru_cache(maxsize=1)
def has_torch_scatter() -> bool:
    """Whether the optional ``torch-scatter`` extension imports."""
    try:
        import torch_scatter  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def available_backends() -> tuple[str, ...]:
    return tuple(b for b in BACKENDS if b != "torch_scatter" or has_torch_scatter())


def set_backend(name: str) -> None:
    """Choose the aggregation backend for every layer: one of :data:`BACKENDS`."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    if name == "torch_scatter" and not has_torch_scatter():
        raise ValueError("torch-scatter is not installed: pip install --no-build-isolation torch-scatter")
    _state["backend"] = name


def get_backend() -> str:
    return "csr" if _state["deterministic"] else _state["backend"]


def set_deterministic(flag: bool = True) -> None:
    """Route every aggregation through the deterministic CSR path (``True``) or the backend."""
    _state["deterministic"] = bool(flag)


def scatter_sum(src: Tensor, index: Tensor, dim_size: int, dim: int = 0) -> Tensor:
    r"""``out[i] = sum over e with index[e] == i of src[e]`` along ``dim``: ``[E, *]`` -> ``[dim_size, *]``."""
    dim = dim % src.dim()
    if dim:
        return scatter_sum(src.movedim(dim, 0), index, dim_size).movedim(0, dim)
    backend = get_backend()
    if backend == "torch_scatter" and not torch.compiler.is_compiling():
        import torch_scatter

        return torch_scatter.scatter_add(src, index, dim=0, dim_size=dim_size)
    if backend == "csr":
        return _scatter_operator(index, dim_size, src.dtype, src.device)(src)
    out = src.new_zeros((dim_size,) + src.shape[1:])
    return out.index_add_(0, index, src)


def _scatter_operator(index: Tensor, dim_size: int, dtype: torch.dtype, device: torch.device) -> "SparseOperator":
    """The CSR operator that sums rows of ``[E, *]`` into ``[dim_size, *]`` by ``index``, cached.

    ``index`` is often a view made afresh on every call (``edge_index[1]``), so the cache entry
    lives on the tensor that owns the memory, keyed by the view's offset, stride and shape: views
    of one ``edge_index`` share one operator, and writing to either bumps the version counter
    they share, which rebuilds it. A sort per graph instead of per call.
    """
    def build():
        ones = torch.ones(index.numel(), dtype=dtype, device=device)
        return SparseOperator(index, torch.arange(index.numel(), device=index.device), ones, (dim_size, index.numel()))

    if torch.compiler.is_compiling():
        return build()  # the cache is Python state that a traced graph must not capture
    owner = index if index._base is None else index._base
    key = ("scatter_sum", index.storage_offset(), tuple(index.stride()), tuple(index.shape), index.dtype,
           int(dim_size), compute_dtype(dtype), str(device))
    return cached_operator(owner, key, build)


def scatter_mean(src: Tensor, index: Tensor, dim_size: int, dim: int = 0) -> Tensor:
    """Mean of ``src`` over each group along ``dim``; empty groups give zero."""
    dim = dim % src.dim()
    count = torch.bincount(index, minlength=dim_size).clamp_min(1).to(src.dtype)
    shape = [1] * src.dim()
    shape[dim] = dim_size
    return scatter_sum(src, index, dim_size, dim) / count.view(shape)


class SparseOperator(torch.nn.Module):
    r"""A fixed sparse matrix :math:`A` of shape ``[rows, cols]`` applied to dense features.

    ``A[row[k], col[k]] = value[k]`` (repeated entries add). Stored once as CSR together with its
    transpose, so that :math:`y = A x` and the backward :math:`\partial x = A^\top \partial y` are
    both one sparse-dense product, deterministic on every device. Gradients flow to ``x`` only:
    ``A`` is geometry, built once and reused. The product is a registered custom operator, so
    ``torch.compile`` keeps it in one graph.

    Shapes:
        - input: :math:`[\text{cols}, C]`
        - output: :math:`[\text{rows}, C]`
    """

    def __init__(self, row: Tensor, col: Tensor, value: Tensor, shape: tuple[int, int]):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        value = value.to(compute_dtype(value.dtype))
        # the backward multiplies by the conjugate transpose (PyTorch's convention for complex)
        for prefix, (r, c, v, sh) in {"a": (row, col, value, self.shape),
                                      "t": (col, row, value.conj(), self.shape[::-1])}.items():
            crow, ccol, cval = _csr_arrays(r, c, v, sh)
            self.register_buffer(f"{prefix}_crow", crow, persistent=False)
            self.register_buffer(f"{prefix}_col", ccol, persistent=False)
            self.register_buffer(f"{prefix}_val", cval, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[0] != self.shape[1]:
            raise ValueError(f"SparseOperator of shape {list(self.shape)} applied to {x.shape[0]} rows")
        if compute_dtype(x.dtype) != self.a_val.dtype:
            raise ValueError(f"SparseOperator holds {self.a_val.dtype} values but the input is {x.dtype}; "
                             "build the operator in compute_dtype(x.dtype)")
        y = spmm(self.a_crow, self.a_col, self.a_val, self.t_crow, self.t_col, self.t_val, x.to(self.a_val.dtype))
        return y.to(x.dtype)

    def product(self, x: Tensor, transpose: bool = False) -> Tensor:
        """:math:`A x` (or :math:`A^\top x`) without autograd, in the operator's dtype (for custom ops)."""
        if transpose:
            return spmm_impl(self.t_crow, self.t_col, self.t_val, x)
        return spmm_impl(self.a_crow, self.a_col, self.a_val, x)

    @property
    def nnz(self) -> int:
        return int(self.a_val.numel())


def _csr_arrays(row: Tensor, col: Tensor, value: Tensor, shape):
    order = torch.argsort(row * shape[1] + col, stable=True)
    # 32-bit indices halve the memory the product reads, where they suffice
    index_dtype = torch.int32 if max(shape[0], shape[1], row.numel()) < 2**31 - 1 else torch.long
    crow = torch.zeros(shape[0] + 1, dtype=torch.long, device=row.device)
    crow[1:] = torch.cumsum(torch.bincount(row, minlength=shape[0]), 0)
    return crow.to(index_dtype), col[order].to(index_dtype).contiguous(), value[order].contiguous()


def spmm_impl(crow: Tensor, col: Tensor, val: Tensor, x: Tensor) -> Tensor:
    """``A @ x`` for ``A`` in CSR arrays and ``x`` of ``[cols, *]``; any size may be zero."""
    rows, trailing = crow.numel() - 1, x.shape[1:]
    flat = x.reshape(x.shape[0], math.prod(trailing))
    if val.numel() == 0 or flat.numel() == 0:
        # no stored entries (a graph without edges) or nothing to multiply: skip the sparse kernel
        return x.new_zeros((rows,) + trailing)
    a = torch.sparse_csr_tensor(crow, col, val, (rows, x.shape[0]), check_invariants=False)
    # autocast would cast a float32 product to half, for which the CPU has no CSR kernel
    with torch.autocast(x.device.type, enabled=False):
        return (a @ flat).reshape((rows,) + trailing)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype sparse products run in: float32 for float16 and bfloat16 (PyTorch's CPU CSR product
    has no half-precision kernel, and float32 sums are more accurate), the dtype itself otherwise."""
    return torch.float32 if dtype in HALF_DTYPES else dtype


@torch.library.custom_op("meshgdl::spmm", mutates_args=())
def spmm(crow: Tensor, col: Tensor, val: Tensor, crow_t: Tensor, col_t: Tensor, val_t: Tensor, x: Tensor) -> Tensor:
    """``A @ x`` for ``A`` in CSR arrays; the transpose's arrays come along for the backward."""
    return spmm_impl(crow, col, val, x)


@spmm.register_fake
def _(crow, col, val, crow_t, col_t, val_t, x):
    return x.new_empty((crow.shape[0] - 1,) + x.shape[1:])


def _spmm_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs[:6])


def _spmm_backward(ctx, grad):
    crow, col, val, crow_t, col_t, val_t = ctx.saved_tensors
    return None, None, None, None, None, None, spmm(crow_t, col_t, val_t, crow, col, val, grad)


spmm.register_autograd(_spmm_backward, setup_context=_spmm_setup)


def edge_operator(edge_index: Tensor, coefficients: Tensor, num_nodes: int, normalize: bool = False) -> SparseOperator:
    r"""The operator :math:`y_{i,k} = \sum_{j \to i} c_{e,k}\, x_j` of per-edge coefficients.

    ``coefficients`` is :math:`[E, K]` (real or complex). The result maps :math:`[N, C]` to
    :math:`[N K, C]`, row :math:`i K + k`; reshape it to :math:`[N, K, C]`. With ``normalize`` the
    sum becomes a mean over each receiver's in-degree. Fused layers build one for their fixed
    geometric coefficients (phases, radial profiles, weights) and aggregate before they transform.
    """
    j, i = edge_index[0], edge_index[1]
    k = coefficients.shape[1]
    if coefficients.shape[0] != j.shape[0]:
        raise ValueError(f"coefficients must be [E={j.shape[0]}, K], got {list(coefficients.shape)}")
    if normalize:
        deg = torch.bincount(i, minlength=num_nodes).clamp_min(1).to(coefficients.real.dtype)
        coefficients = coefficients / deg[i, None]
    rows = (i[:, None] * k + torch.arange(k, device=i.device)).reshape(-1)
    cols = j[:, None].expand(-1, k).reshape(-1)
    return SparseOperator(rows, cols, coefficients.reshape(-1), (num_nodes * k, num_nodes))


_GEOMETRY_CACHE: dict[int, tuple] = {}


def cached_operator(edge_index: Tensor, key: tuple, build, depends: tuple = ()) -> SparseOperator:
    """Return the operator cached for ``edge_index`` under ``key``, building it with ``build()`` once.

    Entries live as long as the ``edge_index`` tensor and are rebuilt if it or one of the tensors
    in ``depends`` (``edge_logmap``, ``edge_transport``, ``edge_weight``; ``None`` is skipped) is
    replaced or changed in place, so a static graph pays for its geometry once and a network's
    layers share it.
    """
    import weakref

    entry = _GEOMETRY_CACHE.get(id(edge_index))
    if entry is None or entry[0]() is not edge_index:
        ref = weakref.ref(edge_index, lambda _, k=id(edge_index): _GEOMETRY_CACHE.pop(k, None))
        entry = (ref, {})
        _GEOMETRY_CACHE[id(edge_index)] = entry
    # each key keeps its own stamp: layers that read different tensors (with and without
    # edge_weight) share a graph without evicting each other's operators
    stamp = tuple((id(t), t._version) for t in (edge_index, *depends) if t is not None)
    hit = entry[1].get(key)
    if hit is None or hit[0] != stamp:
        hit = entry[1][key] = (stamp, build())
    return hit[1]
