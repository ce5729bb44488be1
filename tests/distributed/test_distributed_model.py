"""P = 2 gloo processes give the full-graph forward and gradients of GemConv stacks and GemResNet."""
import pytest
import torch

from meshgdl.distributed import assign_parts, distribute, partition_graph, reduce_gradients

from .cases import build_model, icosphere_graph, loss_and_grads, run_ranks, sky_graph


def _rank_main(rank, parts, inputs, out):
    part = parts[rank]
    x, weight = inputs
    result = {"owned": part.owned}
    for name in ("stack", "resnet"):
        model = distribute(build_model(name))
        y, x_grad, _ = loss_and_grads(model, x[part.owned], part, weight[part.owned])
        reduce_gradients(model)
        result[name] = (y, x_grad, {k: p.grad for k, p in model.named_parameters()})
    # features [B, N, C] over one shared graph exchange along the node dimension
    conv = distribute(build_model("stack").convs[0])
    batched = torch.stack([x, 2 * x])[:, part.owned].clone().requires_grad_()
    conv(batched, part).sum().backward()
    result["batched"] = (conv(batched.detach(), part).detach(), batched.grad)
    torch.save(result, out / f"rank{rank}.pt")


def _assignment(graph, graph_name):
    if graph_name == "mesh":
        try:
            import pymetis  # noqa: F401
        except ImportError:  # METIS is optional: split by a plane instead
            return (graph.pos[:, 0] > 0.1).long()
        return assign_parts(graph, 2, method="metis")
    return assign_parts(graph, 2)


@pytest.mark.parametrize("graph_name", ["mesh", "sky"])
def test_two_ranks_equal_the_whole_graph(graph_name, tmp_path):
    graph = icosphere_graph() if graph_name == "mesh" else sky_graph()
    assignment = _assignment(graph, graph_name)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(graph.num_nodes, 2, generator=gen, dtype=torch.float64)
    weight = torch.randn(graph.num_nodes, 3, generator=gen, dtype=torch.float64)
    run_ranks(_rank_main, 2, partition_graph(graph, assignment=assignment), (x, weight), tmp_path)

    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert sorted(torch.cat([r["owned"] for r in ranks]).tolist()) == list(range(graph.num_nodes))
    conv = build_model("stack").convs[0]
    batched = torch.stack([x, 2 * x]).requires_grad_()
    conv(batched, graph).sum().backward()
    for r in ranks:
        torch.testing.assert_close(r["batched"][0], conv(batched, graph)[:, r["owned"]], atol=1e-12, rtol=0)
        torch.testing.assert_close(r["batched"][1], batched.grad[:, r["owned"]], atol=1e-12, rtol=0)
    for name in ("stack", "resnet"):
        y, x_grad, grads = loss_and_grads(build_model(name), x, graph, weight)
        for r in ranks:
            owned = r["owned"]
            y_r, x_grad_r, grads_r = r[name]
            torch.testing.assert_close(y_r, y[owned], atol=1e-12, rtol=0)
            torch.testing.assert_close(x_grad_r, x_grad[owned], atol=1e-12, rtol=0)
            for key, g in grads.items():
                torch.testing.assert_close(grads_r[key], g, atol=1e-12, rtol=0, msg=f"{name} {key}")
