import pytest
import torch

from meshgdl import ops

from .conftest import require_torch_scatter


@pytest.fixture(autouse=True)
def _restore_backend():
    before = ops.get_backend()
    yield
    ops.set_deterministic(False)
    ops.set_backend(before)


def random_scatter(dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    index = torch.randint(0, 50, (400,), generator=g)
    src = torch.randn(400, 3, 2, generator=g, dtype=dtype, requires_grad=True)
    return src, index


@pytest.mark.parametrize("backend", ["native", "torch_scatter", "csr"])
def test_every_backend_sums_like_a_plain_loop(backend, dtype):
    if backend == "torch_scatter":
        require_torch_scatter()
    ops.set_backend(backend)
    src, index = random_scatter(dtype)
    expected = torch.stack([src[index == i].sum(0) for i in range(51)])
    out = ops.scatter_sum(src, index, 51)
    assert torch.allclose(out, expected, atol=1e-5 if dtype == torch.float32 else 1e-12)
    out.pow(2).sum().backward()
    assert torch.allclose(src.grad, 2 * expected[index], atol=1e-5 if dtype == torch.float32 else 1e-12)
    mean = ops.scatter_mean(src, index, 51)
    assert torch.allclose(mean[50], torch.zeros(3, 2, dtype=dtype))  # an empty group is zero


def test_deterministic_mode_uses_csr_and_agrees():
    src, index = random_scatter(torch.float64)
    plain = ops.scatter_sum(src, index, 50)
    ops.set_deterministic(True)
    assert ops.get_backend() == "csr"
    assert torch.allclose(ops.scatter_sum(src, index, 50), plain, atol=1e-12)


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="choose one of"):
        ops.set_backend("cuda_magic")


def sparse_case(seed=0):
    g = torch.Generator().manual_seed(seed)
    row, col = torch.randint(0, 30, (200,), generator=g), torch.randint(0, 20, (200,), generator=g)
    value = torch.randn(200, generator=g, dtype=torch.float64)
    dense = torch.zeros(30, 20, dtype=torch.float64).index_put_((row, col), value, accumulate=True)
    return ops.SparseOperator(row, col, value, (30, 20)), dense


def test_sparse_operator_is_the_dense_matrix_forward_and_backward():
    op, dense = sparse_case()
    x = torch.randn(20, 4, dtype=torch.float64, requires_grad=True)
    assert torch.allclose(op(x), dense @ x, atol=1e-12)
    assert torch.autograd.gradcheck(op, (x,))
    assert torch.autograd.gradgradcheck(op, (x,))
    with pytest.raises(ValueError, match="applied to 21 rows"):
        op(torch.randn(21, 4, dtype=torch.float64))


@pytest.mark.parametrize("block", [1, 3])
def test_sparse_operator_under_torch_func_is_the_dense_matrix(block):
    op, dense = sparse_case() if block == 1 else block_case(torch.float64, block)
    x, dx = torch.randn(2, 20, 4, dtype=torch.float64)
    torch.testing.assert_close(torch.func.jvp(op, (x,), (dx,))[1], dense @ dx, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.func.jacrev(op)(x), torch.einsum("ij,kl->ikjl", dense, torch.eye(4, dtype=x.dtype)),
                               rtol=0, atol=1e-12)
    xs = torch.randn(5, 20, 4, 3, dtype=torch.float64)  # two trailing dims per sample, batch anywhere
    torch.testing.assert_close(torch.func.vmap(op)(xs), torch.einsum("ij,bjkl->bikl", dense, xs), rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.func.vmap(op, in_dims=2)(xs.movedim(0, 2)), torch.einsum("ij,bjkl->bikl", dense, xs),
                               rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.func.vmap(op)(xs[..., 0, 0]), xs[..., 0, 0] @ dense.T, rtol=0, atol=1e-12)
    # per-sample gradients of a nonlinear loss: grad under vmap
    loss = lambda v: torch.sin(op(v)).sum()  # noqa: E731
    want = torch.stack([dense.T @ torch.cos(dense @ v) for v in xs[..., 0]])
    torch.testing.assert_close(torch.func.vmap(torch.func.grad(loss))(xs[..., 0]), want, rtol=0, atol=1e-12)
    # the stored values are geometry: vmap over them is refused with the reason
    with pytest.raises(ValueError, match="maps over the features only"):
        torch.func.vmap(lambda v: torch.func.functional_call(op, {"val": v}, (x,)))(torch.stack([op.val, op.val]))


def test_deterministic_sums_under_torch_func():
    src, index = random_scatter(torch.float64)
    src, tangent = src.detach(), torch.randn_like(src)
    want = torch.func.jvp(lambda s: ops.scatter_sum(s, index, 51), (src,), (tangent,))[1]
    ops.set_deterministic(True)
    got = torch.func.jvp(lambda s: ops.scatter_sum(s, index, 51), (src,), (tangent,))[1]
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    batched = torch.func.vmap(lambda s: ops.scatter_sum(s, index, 51), in_dims=1)(src)
    torch.testing.assert_close(batched, ops.scatter_sum(src, index, 51).movedim(1, 0), rtol=0, atol=1e-12)


def block_case(dtype, block=3, seed=0):
    """Runs of ``block`` rows with the same columns (repeated ones among them), as edge operators have."""
    g = torch.Generator().manual_seed(seed)
    node, col = torch.randint(0, 10, (40,), generator=g), torch.randint(0, 20, (40,), generator=g)
    col[:5] = col[5:10] = 7  # repeated entries add
    node[:5] = node[5:10]
    value = torch.randn(40, block, generator=g, dtype=dtype)
    row = (node[:, None] * block + torch.arange(block)).reshape(-1)
    cols = col[:, None].expand(-1, block).reshape(-1)
    dense = torch.zeros(10 * block, 20, dtype=dtype).index_put_((row, cols), value.reshape(-1), accumulate=True)
    return ops.SparseOperator(row, cols, value.reshape(-1), (10 * block, 20), block=block), dense


@pytest.mark.parametrize("block", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_sparse_operator_builds_its_transpose_once_when_a_gradient_needs_it(block, dtype):
    op, dense = block_case(dtype, block)
    x = torch.randn(20, 2, 3, dtype=dtype, requires_grad=True)
    with torch.no_grad():
        assert torch.allclose(op(x), (dense @ x.reshape(20, 6)).reshape(-1, 2, 3), atol=1e-12)
    # inference keeps one value a stored entry, and the entries' order by column as two int32 a run
    assert op.t_val is None and sum(b.is_floating_point() or b.is_complex() for b in op.buffers()) == 1
    assert op.t_first.numel() == op.t_node.numel() == op.nnz // block and not op.t_first.is_floating_point()
    y = op(x)
    t_col, t_val = op.t_col, op.t_val
    assert t_val is not None and t_col.numel() == t_val.numel() == op.nnz
    (gx,) = torch.autograd.grad(y, x, torch.ones_like(y))
    assert torch.allclose(gx, (dense.T.conj() @ torch.ones(10 * block, 6, dtype=dtype)).reshape(20, 2, 3), atol=1e-12)
    g = torch.randn(10 * block, 2, 3, dtype=dtype)
    assert torch.allclose(op.product(g, transpose=True), (dense.T.conj() @ g.reshape(-1, 6)).reshape(20, 2, 3), atol=1e-12)
    assert op.t_col is t_col and op.t_val is t_val  # kept, not rebuilt
    assert torch.autograd.gradcheck(op, (x,)) and torch.autograd.gradgradcheck(op, (x,))


def test_a_backward_through_a_product_run_without_grad_mode_is_refused():
    op, _ = block_case(torch.float64, 3)
    with torch.no_grad():
        arrays = (op.crow, op.col, op.val, op.t_crow, op.t_node[:0], op.val[:0])
    with pytest.raises(RuntimeError, match="transpose was not built"):
        ops.spmm(*arrays, torch.randn(30, 2, dtype=torch.float64), True)


@pytest.mark.parametrize("normalize", [False, True])
def test_edge_operator_built_from_the_edges_equals_the_operator_of_its_entries(normalize):
    """edge_operator builds its arrays from the E edges only; they equal those the general constructor
    sorts out of all E K entries (repeated edges and isolated nodes included)."""
    g = torch.Generator().manual_seed(1)
    edge_index = torch.randint(0, 12, (2, 50), generator=g)
    edge_index[:, :4] = edge_index[:, 4:8]
    edge_index[1] = edge_index[1].clamp_max(10)  # node 11 receives nothing
    coefficients = torch.randn(50, 4, generator=g, dtype=torch.float64)
    op = ops.edge_operator(edge_index, coefficients, 12, normalize)
    deg = torch.bincount(edge_index[1], minlength=12).clamp_min(1) if normalize else torch.ones(12)
    rows = (edge_index[1][:, None] * 4 + torch.arange(4)).reshape(-1)
    cols = edge_index[0][:, None].expand(-1, 4).reshape(-1)
    general = ops.SparseOperator(rows, cols, (coefficients / deg[edge_index[1], None]).reshape(-1), (48, 12), block=4)
    assert op.shape == general.shape and op.block == general.block
    for a, b in zip(op.buffers(), general.buffers()):
        assert a.dtype == b.dtype and torch.allclose(a, b, atol=1e-14)


@pytest.mark.parametrize("normalize", [False, True])
def test_pair_operator_is_the_complex_product_forward_and_backward(normalize):
    """pair_operator's real product on the stacked pairs equals the dense complex matrix
    sum_e c_ek z_j (over repeated edges and a node without edges), and its transpose is the adjoint."""
    from meshgdl.nn.functional.fused import _stack_pairs, _unstack_pairs

    g = torch.Generator().manual_seed(2)
    edge_index = torch.randint(0, 9, (2, 40), generator=g)
    edge_index[:, :3] = edge_index[:, 3:6]
    edge_index[1] = edge_index[1].clamp_max(7)  # node 8 receives nothing
    c = torch.randn(40, 3, 2, generator=g, dtype=torch.float64)
    op = ops.pair_operator(edge_index, c, 9, normalize)
    dense = torch.zeros(9, 3, 9, dtype=torch.complex128)
    deg = torch.bincount(edge_index[1], minlength=9).clamp_min(1) if normalize else torch.ones(9)
    for (j, i), ce in zip(edge_index.T.tolist(), torch.view_as_complex(c)):
        dense[i, :, j] += ce / deg[i]
    x = torch.randn(9, 4, generator=g, dtype=torch.float64, requires_grad=True)  # 2 complex channels (u, v)
    z = torch.view_as_complex(x.view(9, 2, 2))
    u, v = x.view(9, 2, 2).unbind(-1)
    stacked = torch.stack([torch.cat([u, v], 1), torch.cat([-v, u], 1)], 1).view(18, 4)
    assert torch.equal(_stack_pairs(x.detach()), stacked.detach())
    y = op(stacked).view(9, 3, 2, 2)                                            # [N, K, re / im, C]
    assert op.shape == (27, 18) and op.nnz == 40 * 3 * 2
    assert torch.allclose(torch.complex(y[:, :, 0], y[:, :, 1]), torch.einsum("ikj,jc->ikc", dense, z), atol=1e-12)
    gy = torch.randn(27, 4, generator=g, dtype=torch.float64)
    (gx,) = torch.autograd.grad(y.reshape(27, 4), x, gy)
    assert torch.allclose(_unstack_pairs(op.product(gy, transpose=True)), gx, atol=1e-12)


def test_sparse_operator_refuses_runs_that_differ():
    with pytest.raises(ValueError, match="same columns"):
        ops.SparseOperator(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), torch.ones(3), (2, 2), block=2)
    with pytest.raises(ValueError, match="same columns"):
        ops.SparseOperator(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 1, 1]), torch.ones(4), (4, 2), block=2)
    with pytest.raises(ValueError, match="divide the 3 rows"):
        ops.SparseOperator(torch.tensor([0]), torch.tensor([0]), torch.ones(1), (3, 2), block=2)


def test_sparse_operator_compiles_without_graph_breaks():
    op, dense = sparse_case(1)
    x = torch.randn(20, 3, dtype=torch.float64, requires_grad=True)
    torch._dynamo.reset()
    f = torch.compile(lambda x: op(x).tanh().sum(), fullgraph=True)
    f(x).backward()
    expected = dense.T @ (1 - torch.tanh(dense @ x) ** 2)
    assert torch.allclose(x.grad, expected, atol=1e-12)


@pytest.mark.parametrize("backend", ["torch_scatter", "csr"])
def test_message_passing_layers_agree_on_every_backend(backend):
    if backend == "torch_scatter":
        require_torch_scatter()
    import numpy as np
    import trimesh

    from meshgdl import FieldType
    from meshgdl.geometry import mesh_graph
    from meshgdl.nn import GemConv

    m = trimesh.creation.icosphere(subdivisions=1)
    graph = mesh_graph(np.array(m.vertices), np.array(m.faces), dtype=torch.float64)
    conv = GemConv(FieldType([2, 1]), FieldType([1, 1]), fused=False).double()
    x = torch.randn(graph.num_nodes, 4, dtype=torch.float64)
    expected = conv(x, graph)
    ops.set_backend(backend)
    assert torch.allclose(conv(x, graph), expected, atol=1e-12)


@pytest.mark.parametrize("num_nodes", [5, 0])
def test_edge_operator_without_edges_is_zero_forward_and_backward(num_nodes):
    no_edges = torch.zeros(2, 0, dtype=torch.long)
    op = ops.edge_operator(no_edges, torch.zeros(0, 3, dtype=torch.float64), num_nodes, normalize=True)
    x = torch.randn(num_nodes, 2, 4, dtype=torch.float64, requires_grad=True)
    y = op(x)
    assert y.shape == (3 * num_nodes, 2, 4) and not y.any()
    y.sum().backward()
    assert x.grad.shape == x.shape and not x.grad.any()


def test_sparse_operator_takes_half_precision_through_float32():
    op, dense = sparse_case(2)
    single = ops.SparseOperator(*_entries(dense.float()), (30, 20))
    x = torch.randn(20, 3)
    for half in (torch.float16, torch.bfloat16):
        assert ops.compute_dtype(half) == torch.float32
        y = single(x.to(half))
        assert y.dtype == half and torch.allclose(y.float(), dense.float() @ x.to(half).float(), rtol=1e-2, atol=1e-2)


def _entries(dense):
    row, col = dense.nonzero().T
    return row, col, dense[row, col]


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_every_csr_sum_takes_half_precision(half):
    # deterministic mode routes plain message passing through a CSR operator built in the input's dtype
    src, index = random_scatter(torch.float32)
    expected = ops.scatter_sum(src.detach(), index, 51)
    ops.set_deterministic(True)
    out = ops.scatter_sum(src.detach().to(half), index, 51)
    assert out.dtype == half and torch.allclose(out.float(), expected, rtol=2e-2, atol=5e-2)


def test_sparse_operator_keeps_module_apply():
    seen = []
    torch.nn.Sequential(sparse_case()[0]).apply(lambda m: seen.append(type(m).__name__))
    assert "SparseOperator" in seen


def test_layers_with_and_without_edge_weight_share_the_cache(monkeypatch):
    from meshgdl.geometry import grid_graph
    from meshgdl.nn import IsoConv

    graph = grid_graph(6, 6)
    graph.edge_weight = torch.rand(graph.num_edges)
    builds, build = [], ops.edge_operator
    monkeypatch.setattr(ops, "edge_operator", lambda *a, **k: builds.append(1) or build(*a, **k))
    weighted, plain = IsoConv(2, 2, use_edge_weight=True), IsoConv(2, 2)
    x = torch.randn(graph.num_nodes, 2)
    for _ in range(3):
        weighted(x, graph), plain(x, graph)
    assert len(builds) == 2
    graph.edge_weight.mul_(2)  # the weighted operator is stale now, the plain one is not
    weighted(x, graph), plain(x, graph)
    assert len(builds) == 3


def _count_scatter_builds(monkeypatch):
    builds, make = [], ops.SparseOperator
    monkeypatch.setattr(ops, "SparseOperator", lambda *a, **k: builds.append(1) or make(*a, **k))
    return builds


def test_deterministic_message_passing_sorts_once_per_graph(monkeypatch):
    import gc

    from meshgdl import FieldType
    from meshgdl.geometry import grid_graph
    from meshgdl.nn import GemConv

    graph = grid_graph(5, 4, dtype=torch.float64)
    convs = [GemConv(FieldType([2, 1]), FieldType([1, 1]), fused=False).double() for _ in range(2)]
    x = torch.randn(graph.num_nodes, 4, dtype=torch.float64)
    expected = [conv(x, graph) for conv in convs]  # the native backend's index_add_
    ops.set_deterministic(True)
    builds = _count_scatter_builds(monkeypatch)
    for _ in range(2):
        for conv, want in zip(convs, expected):
            assert torch.allclose(conv(x, graph), want, atol=1e-12)
    assert len(builds) == 1  # edge_index[1] is a new view each call, yet one operator serves all
    graph.edge_index[1] = graph.edge_index[1].roll(1)  # rewired in place: the operator is stale
    rewired = ops.scatter_sum(x[graph.edge_index[0]], graph.edge_index[1], graph.num_nodes)
    assert len(builds) == 2
    loop = torch.stack([x[graph.edge_index[0][graph.edge_index[1] == i]].sum(0) for i in range(graph.num_nodes)])
    assert torch.allclose(rewired, loop, atol=1e-12)
    graph.edge_index = graph.edge_index.flip(0).contiguous()  # replaced: a new operator
    convs[0](x, graph)
    assert len(builds) == 3
    # a graph freed and another allocated (possibly at the same address) never reuses the old sort
    for seed in range(3):
        del graph
        gc.collect()
        graph = grid_graph(5, 4, dtype=torch.float64)
        perm = torch.randperm(graph.num_edges, generator=torch.Generator().manual_seed(seed))
        graph.edge_index = graph.edge_index[:, perm]
        ops.set_deterministic(False)
        want = convs[1](x, graph)
        ops.set_deterministic(True)
        assert torch.allclose(convs[1](x, graph), want, atol=1e-12)


def test_views_at_different_offsets_get_their_own_operator(monkeypatch):
    ops.set_deterministic(True)
    builds = _count_scatter_builds(monkeypatch)
    edge_index = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]])
    src = torch.arange(4.0, dtype=torch.float64)[:, None]
    sums = [ops.scatter_sum(src, edge_index[k], 3) for k in (0, 1, 0, 1)]
    assert len(builds) == 2
    assert sums[0].flatten().tolist() == [0.0, 1.0, 5.0] and sums[1].flatten().tolist() == [2.0, 3.0, 1.0]
    assert torch.equal(sums[0], sums[2]) and torch.equal(sums[1], sums[3])
    ops.scatter_sum(src, edge_index[1], 4)  # another output size: another operator
    ops.scatter_sum(src.float(), edge_index[1], 3)  # another dtype: another operator
    assert len(builds) == 4
