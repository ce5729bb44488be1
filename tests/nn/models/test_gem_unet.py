import pytest
import torch

from meshgdl.field_type import FieldType
from meshgdl.nn.models import CoarseningHierarchy, GemUNet

from ..domains import check_all, domain, randomize_biases


def small_hierarchy(graph):
    return CoarseningHierarchy.build(graph, sizes=(40, 10))


class OnGraph(torch.nn.Module):
    """``model(x, graph)`` for the checks of meshgdl.testing: the hierarchy is built from the graph
    that is given, so a symmetry must also carry the coarsening along."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, graph):
        return self.model(x, small_hierarchy(graph))


@pytest.mark.parametrize("task, readout", [("node", "mean"), ("graph", "mean"), ("graph", "max")])
def test_gem_unet_is_invariant_to_gauges_permutations_and_rotations(task, readout):
    graph, build = domain("points")
    model = OnGraph(randomize_biases(GemUNet(3, 2, 4, depth=2, task=task, readout=readout)))
    x = torch.randn(graph.num_nodes, 3, dtype=torch.float64)
    # random points: on an icosphere farthest points and nearest centres tie, and rounding would
    # pick other clusters for a permuted or gauge-transformed copy
    assert max(check_all(model, x, graph, build, FieldType.scalars(3)).values()) < 1e-10
    out = model.double()(x, graph)
    assert out.shape == ((graph.num_nodes, 4) if task == "node" else (1, 4))


def test_gem_unet_uses_the_levels_it_is_given():
    graph, _ = domain("points")
    hierarchy = small_hierarchy(graph)
    assert [c.coarse.num_nodes for c in hierarchy.levels] == [40, 10]
    model = GemUNet(3, 2, 4, depth=2).double()
    x = torch.randn(graph.num_nodes, 3, dtype=torch.float64)
    deep = model(x, hierarchy)
    shallow = model(x, CoarseningHierarchy(graph, hierarchy.levels[:1]))
    assert deep.shape == shallow.shape == (graph.num_nodes, 4) and (deep - shallow).abs().max() > 1e-6
    # a graph instead of a hierarchy is coarsened with the default sizes (none below 150 but 128, 32)
    assert torch.allclose(model(x, graph), model(x, CoarseningHierarchy.build(graph)), atol=1e-12)
    with pytest.raises(ValueError, match="task must be 'node' or 'graph'"):
        GemUNet(3, 2, 4, task="edge")


def test_gem_unet_max_readout_takes_the_largest_invariant_and_batches():
    graph, _ = domain("points")
    hierarchy = small_hierarchy(graph)
    x = torch.randn(3, graph.num_nodes, 3, dtype=torch.float64)
    torch.manual_seed(0)
    mean = randomize_biases(GemUNet(3, 2, 4, depth=2, task="graph")).double()
    torch.manual_seed(0)
    peak = randomize_biases(GemUNet(3, 2, 4, depth=2, task="graph", readout="max")).double()
    assert (mean(x[0], hierarchy) - peak(x[0], hierarchy)).abs().max() > 1e-3
    # [B, N, C] on one shared graph gives what every sample gives alone, for both tasks
    batched = peak(x, hierarchy)
    assert batched.shape == (3, 4)
    assert torch.allclose(batched, torch.cat([peak(sample, hierarchy) for sample in x]), atol=1e-12)
    node = randomize_biases(GemUNet(3, 2, 4, depth=2)).double()
    assert torch.allclose(node(x, hierarchy), torch.stack([node(sample, hierarchy) for sample in x]), atol=1e-12)


def test_gem_unet_names_a_bad_readout():
    with pytest.raises(ValueError, match="readout must be 'mean' or 'max', got 'sum'"):
        GemUNet(3, 2, 4, task="graph", readout="sum")
    with pytest.raises(ValueError, match="only the graph task does; pass task='graph'"):
        GemUNet(3, 2, 4, readout="max")
