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

from ._transforms import linear_in_features

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

    ``A[row[k], col[k]] = value[k]`` (repeated entries add). Stored as CSR, with the order of the
    entries by column (two int32 a run of rows, see ``block``) from which the transpose's CSR
    arrays for the backward :math:`\partial x = A^\top \partial y` are built the first time a
    gradient can be asked (a product under grad mode, or :meth:`product` with ``transpose``) and
    then kept: an index and a value a stored entry, as many bytes as ``A``'s own arrays, which
    spares every backward the rebuilding (a third of a GemConv step on large graphs). Products
    under ``torch.no_grad`` never build it. With ``block = K`` the rows come in runs of ``K`` (row
    ``i K + k``) that hold the same columns, as :func:`edge_operator`'s do. Both products sum in
    a fixed order, deterministic on every device. Gradients flow to ``x`` only: ``A`` is
    geometry, built once and reused. The product is a registered custom operator, so
    ``torch.compile`` keeps it in one graph.

    Args:
        row (Tensor), col (Tensor), value (Tensor): the entries, :math:`[\text{nnz}]` each.
        shape (tuple): ``(rows, cols)``.
        block (int): the length of the runs of rows with equal columns; ``rows`` must be a
            multiple of it (default: ``1``)

    Shapes:
        - input: :math:`[\text{cols}, *]`
        - output: :math:`[\text{rows}, *]`
    """

    def __init__(self, row: Tensor, col: Tensor, value: Tensor, shape: tuple[int, int], block: int = 1):
        super().__init__()
        self.shape, self.block = tuple(int(s) for s in shape), int(block)
        if self.block < 1 or self.shape[0] % self.block:
            raise ValueError(f"block={block} must be positive and divide the {self.shape[0]} rows")
        self._register(_csr_arrays(row, col, value.to(compute_dtype(value.dtype)), self.shape, self.block))

    @classmethod
    def from_runs(cls, node: Tensor, col: Tensor, coefficients: Tensor, shape: tuple[int, int]) -> "SparseOperator":
        r"""The operator with ``A[n K + k, col[e]] = coefficients[e, k]`` for entries ``e`` (``node[e] = n``),
        built at the level of the ``E`` entries: no index array of all :math:`E K` stored entries
        is ever formed but the one kept, so building takes little more memory than the result.
        ``shape`` is ``(nodes, cols)``; the operator's is ``(nodes K, cols)``."""
        if coefficients.dim() != 2 or coefficients.shape[1] == 0:
            raise ValueError(f"coefficients must be [E, K] with K >= 1, got {list(coefficients.shape)}")
        op = cls.__new__(cls)
        torch.nn.Module.__init__(op)
        op.shape, op.block = (int(shape[0]) * coefficients.shape[1], int(shape[1])), coefficients.shape[1]
        op._register(_run_arrays(node, col, coefficients.to(compute_dtype(coefficients.dtype)), shape))
        return op

    def _register(self, arrays):
        for name, t in zip(("crow", "col", "val", "t_crow", "t_first", "t_node"), arrays):
            self.register_buffer(name, t, persistent=False)
        # the transpose's columns and values, built by transpose_arrays() when first needed
        self.register_buffer("t_col", None, persistent=False)
        self.register_buffer("t_val", None, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[0] != self.shape[1]:
            raise ValueError(f"SparseOperator of shape {list(self.shape)} applied to {x.shape[0]} rows")
        if compute_dtype(x.dtype) != self.val.dtype:
            raise ValueError(f"SparseOperator holds {self.val.dtype} values but the input is {x.dtype}; "
                             "build the operator in compute_dtype(x.dtype)")
        # without grad mode no backward can follow, and the transpose is not built for nothing
        adjoint = self.transpose_arrays() if torch.is_grad_enabled() else (self.t_crow, self.t_node[:0], self.val[:0])
        return linear_in_features(_spmm_on_features, False, x.to(self.val.dtype), self.crow, self.col, self.val,
                                  *adjoint).to(x.dtype)

    def product(self, x: Tensor, transpose: bool = False) -> Tensor:
        r""":math:`A x` (or :math:`A^\top x`, conjugated for complex ``A``) without autograd, in the
        operator's dtype (for custom ops)."""
        if transpose:
            return spmm_impl(*self.transpose_arrays(), x)
        return spmm_impl(self.crow, self.col, self.val, x)

    def transpose_arrays(self) -> tuple[Tensor, Tensor, Tensor]:
        r"""CSR arrays (row pointers, columns, values) of :math:`A^\top` (conjugated), built on the
        first call and kept."""
        if self.t_val is None or self.t_val.device != self.val.device or self.t_val.dtype != self.val.dtype:
            _, self.t_col, self.t_val = _transposed(self.crow, self.col, self.val, self.t_crow, self.t_first,
                                                    self.t_node, self.block)
        return self.t_crow, self.t_col, self.t_val

    @property
    def nnz(self) -> int:
        return int(self.val.numel())


def _csr_arrays(row: Tensor, col: Tensor, value: Tensor, shape, block: int):
    """CSR arrays of ``A``, and for the transpose: its row pointers, and for each run of ``block``
    entries in column-major order the position of its first entry in ``A`` and its run of rows."""
    order = torch.argsort(row * shape[1] + col, stable=True)
    # 32-bit indices halve the memory the product reads, where they suffice
    index_dtype = torch.int32 if max(shape[0], shape[1], row.numel()) < 2**31 - 1 else torch.long
    row, col = row[order], col[order]
    crow = _pointers(row, shape[0])
    first = torch.nonzero(row % block == 0).view(-1)   # the entries of each run's first row
    if block > 1:
        # each entry against the entry at its place in its run's first row
        offset = torch.arange(row.numel(), device=row.device) - crow[row]
        twin = (crow[row - row % block] + offset).clamp_max(max(row.numel() - 1, 0))
        if first.numel() * block != row.numel() or not torch.equal(col[twin], col):
            raise ValueError(f"SparseOperator(block={block}): each run of {block} rows must hold the same columns")
    # stable: the transpose sums each column's entries in row order, so repeated entries add alike
    by_col = torch.argsort(col[first], stable=True)
    first = first[by_col]
    t_crow = _pointers(col[first], shape[1]) * block
    idx = lambda t: t.to(index_dtype).contiguous()  # noqa: E731
    return (idx(crow), idx(col), value[order].contiguous(), idx(t_crow), idx(first),
            idx(row[first] // block))


def _pointers(index: Tensor, size: int) -> Tensor:
    """CSR row pointers ``[size + 1]`` (int64) of the sorted row indices ``index``."""
    ptr = torch.zeros(size + 1, dtype=torch.long, device=index.device)
    ptr[1:] = torch.cumsum(torch.bincount(index, minlength=size), 0)
    return ptr


def _run_arrays(node: Tensor, col: Tensor, coefficients: Tensor, shape):
    """The arrays of :func:`_csr_arrays` for :meth:`SparseOperator.from_runs`, from ``E``-long work arrays."""
    e, k = coefficients.shape
    index_dtype = torch.int32 if max(shape[0] * k, shape[1], e * k) < 2**31 - 1 else torch.long
    order = torch.argsort(node * shape[1] + col, stable=True)
    node, col = node[order], col[order]
    start = _pointers(node, shape[0])
    count = start[1:] - start[:-1]
    steps = torch.arange(k, device=node.device)
    crow = torch.cat([(k * start[:-1, None] + steps * count[:, None]).reshape(-1), start[-1:] * k])
    # entry e of node n sits at k start[n] + (e - start[n]) in row (n, 0), and count[n] further a row
    first = torch.arange(e, device=node.device) + (k - 1) * start[node]
    stride = count[node]
    ccol = torch.empty(e * k, dtype=index_dtype, device=node.device)
    val = torch.empty(e * k, dtype=coefficients.dtype, device=node.device)
    for step in range(k):
        place = first + step * stride
        ccol[place] = col.to(index_dtype)
        val[place] = coefficients[order, step]
    by_col = torch.argsort(col, stable=True)
    t_crow = _pointers(col, shape[1]) * k
    idx = lambda t: t.to(index_dtype).contiguous()  # noqa: E731
    return idx(crow), ccol, val, idx(t_crow), idx(first[by_col]), idx(node[by_col])


def _transposed(crow: Tensor, col: Tensor, val: Tensor, t_crow: Tensor, t_first: Tensor, t_node: Tensor, block: int):
    """CSR arrays of :math:`A^\\top` (conjugated) from those of ``A`` and the runs' column-major order."""
    # index_select: several times faster than advanced indexing with 32-bit indices
    if block == 1:
        return t_crow, t_node, val.index_select(0, t_first).conj()
    k = torch.arange(block, dtype=t_node.dtype, device=t_node.device)
    head = t_node * block
    length = crow.index_select(0, head + 1) - crow.index_select(0, head)    # entries in each row of the run
    t_val = val.index_select(0, (t_first[:, None] + k * length[:, None]).view(-1)).conj()
    return t_crow, (head[:, None] + k).view(-1), t_val  # the entries' positions freed first


def spmm_impl(crow: Tensor, col: Tensor, val: Tensor, x: Tensor) -> Tensor:
    """``A @ x`` for ``A`` in CSR arrays and ``x`` of ``[cols, *]``; any size may be zero."""
    rows, trailing = crow.numel() - 1, x.shape[1:]
    flat = x.reshape(x.shape[0], math.prod(trailing))
    if val.numel() == 0 or flat.numel() == 0:
        # no stored entries (a graph without edges) or nothing to multiply: skip the sparse kernel
        return x.new_zeros((rows,) + trailing)
    # autocast would cast a float32 product to half, for which the CPU has no CSR kernel
    with torch.autocast(x.device.type, enabled=False):
        if not val.is_complex() and not flat.is_complex():
            # a bag a row: each row's entries summed in order, written once, no zero-filled output
            # (several times faster than the sparse CSR product on CPU, which fills and copies it)
            y = torch.nn.functional.embedding_bag(col, flat.contiguous(), crow, mode="sum", per_sample_weights=val,
                                                  include_last_offset=True)
        else:
            y = torch.sparse_csr_tensor(crow, col, val, (rows, x.shape[0]), check_invariants=False) @ flat
    return y.reshape((rows,) + trailing)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype sparse products run in: float32 for float16 and bfloat16 (PyTorch's CPU CSR product
    has no half-precision kernel, and float32 sums are more accurate), the dtype itself otherwise."""
    return torch.float32 if dtype in HALF_DTYPES else dtype


@torch.library.custom_op("meshgdl::spmm", mutates_args=())
def spmm(crow: Tensor, col: Tensor, val: Tensor, t_crow: Tensor, t_col: Tensor, t_val: Tensor, x: Tensor,
         transpose: bool) -> Tensor:
    r"""``A @ x`` (or :math:`A^\top x`) for ``A`` and :math:`A^\top` in the CSR arrays of
    :meth:`SparseOperator.transpose_arrays`."""
    if not transpose:
        return spmm_impl(crow, col, val, x)
    if t_val.numel() != val.numel():
        raise RuntimeError("meshgdl::spmm: the transpose was not built, because the forward product ran without "
                           "grad mode; run the forward with gradients enabled to differentiate it")
    return spmm_impl(t_crow, t_col, t_val, x)


@spmm.register_fake
def _(crow, col, val, t_crow, t_col, t_val, x, transpose):
    return x.new_empty(((t_crow if transpose else crow).shape[0] - 1,) + x.shape[1:])


def _spmm_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs[:6])
    ctx.transpose = inputs[7]


def _spmm_backward(ctx, grad):
    return (None,) * 6 + (spmm(*ctx.saved_tensors, grad, not ctx.transpose), None)


spmm.register_autograd(_spmm_backward, setup_context=_spmm_setup)


def _spmm_on_features(x: Tensor, crow, col, val, t_crow, t_col, t_val, transpose: bool) -> Tensor:
    """:func:`spmm` with the features first, for :func:`~meshgdl._transforms.linear_in_features`."""
    return spmm(crow, col, val, t_crow, t_col, t_val, x, transpose)


def edge_operator(edge_index: Tensor, coefficients: Tensor, num_nodes: int, normalize: bool = False) -> SparseOperator:
    r"""The operator :math:`y_{i,k} = \sum_{j \to i} c_{e,k}\, x_j` of per-edge coefficients.

    ``coefficients`` is :math:`[E, K]` (real or complex). The result maps :math:`[N, C]` to
    :math:`[N K, C]`, row :math:`i K + k`; reshape it to :math:`[N, K, C]`. With ``normalize`` the
    sum becomes a mean over each receiver's in-degree. Fused layers build one for their fixed
    geometric coefficients (phases, radial profiles, weights) and aggregate before they transform.
    """
    j, i = edge_index[0], edge_index[1]
    coefficients = _edge_coefficients(i, coefficients, num_nodes, normalize)
    return SparseOperator.from_runs(i, j, coefficients, (num_nodes, num_nodes))


def pair_operator(edge_index: Tensor, coefficients: Tensor, num_nodes: int, normalize: bool = False) -> SparseOperator:
    r"""The complex product :math:`y_{i,k} = \sum_{j \to i} c_{e,k}\, z_j` as one real operator.

    ``coefficients`` is :math:`[E, K, 2]`, the (Re, Im) of :math:`c`. With :math:`z = u + i v`
    and the input stacked as :math:`W_{2j} = (u_j \,|\, v_j)`, :math:`W_{2j+1} = (-v_j \,|\, u_j)`
    (:math:`[2N, 2C]`), the operator holds :math:`\mathrm{Re}\,c_e` at column :math:`2j` and
    :math:`\mathrm{Im}\,c_e` at :math:`2j + 1` of row :math:`i K + k`, so that :math:`y = A W` is
    :math:`(\mathrm{Re}\,y \,|\, \mathrm{Im}\,y)`, :math:`[N K, 2C]`: a bag sum writes the complex
    product straight into its output, with as many entries as the real and imaginary parts hold
    (``normalize`` as in :func:`edge_operator`).
    """
    j, i = edge_index[0], edge_index[1]
    if coefficients.dim() != 3 or coefficients.shape[2] != 2:
        raise ValueError(f"coefficients must be [E, K, 2] (re, im), got {list(coefficients.shape)}")
    coefficients = _edge_coefficients(i, coefficients.flatten(1), num_nodes, normalize).view(coefficients.shape)
    return SparseOperator.from_runs(torch.cat([i, i]), torch.cat([2 * j, 2 * j + 1]),
                                    torch.cat([coefficients[..., 0], coefficients[..., 1]]), (num_nodes, 2 * num_nodes))


def _edge_coefficients(i: Tensor, coefficients: Tensor, num_nodes: int, normalize: bool) -> Tensor:
    if coefficients.shape[0] != i.shape[0]:
        raise ValueError(f"coefficients must be [E={i.shape[0]}, K], got {list(coefficients.shape)}")
    if normalize:
        deg = torch.bincount(i, minlength=num_nodes).clamp_min(1).to(coefficients.real.dtype)
        coefficients = coefficients / deg[i, None]
    return coefficients


_GEOMETRY_CACHE: dict[tuple, tuple] = {}


def _identity(t: Tensor) -> tuple:
    """The memory a tensor shows: an alias of it (a compiled backward passes saved inputs as new
    tensor objects over the same memory) has the same identity, a copy has not."""
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype, str(t.device))


def cached_operator(edge_index: Tensor, key: tuple, build, depends: tuple = ()) -> SparseOperator:
    """Return the operator cached for ``edge_index`` under ``key``, building it with ``build()`` once.

    Entries live as long as the ``edge_index`` tensor and are rebuilt if it or one of the tensors
    in ``depends`` (``edge_logmap``, ``edge_transport``, ``edge_weight``; ``None`` is skipped) is
    replaced or changed in place, so a static graph pays for its geometry once and a network's
    layers share it. Tensors are told apart by the memory they show, so aliases of the same
    tensor (as a compiled backward sees them) share its entries.
    """
    import weakref

    ident = _identity(edge_index)
    entry = _GEOMETRY_CACHE.get(ident)
    if entry is None or entry[0]() is None:
        ref = weakref.ref(edge_index, lambda _, k=ident: _GEOMETRY_CACHE.pop(k, None))
        entry = (ref, {})
        _GEOMETRY_CACHE[ident] = entry
    # each key keeps its own stamp: layers that read different tensors (with and without
    # edge_weight) share a graph without evicting each other's operators; aliases share a version
    stamp = tuple((_identity(t), t._version) for t in (edge_index, *depends) if t is not None)
    hit = entry[1].get(key)
    if hit is None or hit[0] != stamp:
        hit = entry[1][key] = (stamp, build())
    return hit[1]
