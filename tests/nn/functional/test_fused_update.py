"""GemConv's in-place dense update equals the update written with autograd's own products."""
import pytest
import torch

from meshgdl import FieldType
from meshgdl.nn import GemConv
from meshgdl.nn.functional.fused_update import FusedUpdate, plain_update

F64 = torch.float64


def operands(in_mult, out_mult, lead, seed=0):
    torch.manual_seed(seed)
    layer = GemConv(FieldType(in_mult), FieldType(out_mult)).double()
    with torch.no_grad():
        layer.bias.normal_() if layer.bias is not None else None
    plan = layer._update_plan
    parts = [torch.randn(*lead, sum(r[2] for r in runs), dtype=F64, requires_grad=True) for runs in plan.runs]
    x = torch.randn(*lead, layer.in_type.dim, dtype=F64, requires_grad=True)
    return layer, plan, parts, x


def both(layer, plan, parts, x):
    pieces = x.split([sl.stop - sl.start for _, sl in layer._in], -1)
    weight = layer._neighbour_matrix()[:, layer._fused_columns]
    blocks = [b for _, b in layer._self_matrices()]
    bias = layer.bias if plan.bias is not None else None
    return (plain_update(plan, weight, bias, parts, pieces, blocks),
            FusedUpdate.apply(plan, len(parts), len(pieces), weight, bias, *parts, *pieces, *blocks))


# an output frequency of multiplicity 0 (its runs read nothing), an input one, and [B, N, C]
@pytest.mark.parametrize("in_mult, out_mult, lead", [([2, 2, 1], [2, 1, 2], (7,)), ([1, 0, 2], [2, 0, 1], (7,)),
                                                     ([0, 2], [3, 1], (7,)), ([2, 1], [1, 2], (3, 5))])
def test_in_place_update_equals_the_autograd_update_forward_backward_and_double_backward(in_mult, out_mult, lead):
    layer, plan, parts, x = operands(in_mult, out_mult, lead)
    plain, fused = both(layer, plan, parts, x)
    torch.testing.assert_close(fused, plain, rtol=0, atol=1e-12)
    inputs = [x, *parts] + [p for p in layer.parameters()]
    go = torch.randn_like(plain)
    want = torch.autograd.grad(plain, inputs, go, retain_graph=True, allow_unused=True)
    got = torch.autograd.grad(fused, inputs, go, retain_graph=True, allow_unused=True)
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if w is not None:
            torch.testing.assert_close(g, w, rtol=0, atol=1e-12)
    # a graph of the backward: its second derivatives too
    first, second = [], []
    for out in (plain, fused):
        grads = torch.autograd.grad(out, [x, *parts, layer.weight], go, create_graph=True, retain_graph=True)
        first.append(grads)
        second.append(torch.autograd.grad(sum(g.square().sum() for g in grads), [x, *parts, layer.weight],
                                          allow_unused=True, retain_graph=True))
    for g, w in zip(*first):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-12)
    assert any(w is not None for w in second[0])  # the weight gradient reads the parts
    for g, w in zip(*second):
        assert (g is None) == (w is None)
        if w is not None:
            torch.testing.assert_close(g, w, rtol=0, atol=1e-12)


def test_layer_runs_the_in_place_update_outside_transforms_and_the_plain_one_inside(monkeypatch):
    from meshgdl.nn.functional import fused_update as module

    layer, plan, parts, x = operands([2, 1], [1, 2], (7,))
    calls = []
    monkeypatch.setattr(module.FusedUpdate, "apply", lambda *a: calls.append("fused") or module.plain_update(
        a[0], a[3], a[4], a[5:5 + a[1]], a[5 + a[1]:5 + a[1] + a[2]], a[5 + a[1] + a[2]:]))
    pieces = x.split([sl.stop - sl.start for _, sl in layer._in], -1)
    layer._fused_update(parts, pieces)
    assert calls == ["fused"]
    torch.func.vmap(lambda p0, p1, v: layer._fused_update([p0, p1], v.split([2, 2], -1)))(
        *(p.detach()[None].expand(3, -1, -1) for p in parts), x.detach()[None].expand(3, -1, -1))
    assert calls == ["fused"]
