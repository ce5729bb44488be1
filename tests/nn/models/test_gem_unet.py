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


@pytest.mark.parametrize("task", ["node", "graph"])
def test_gem_unet_is_invariant_to_gauges_permutations_and_rotations(task):
    graph, build = domain("points")
    model = OnGraph(randomize_biases(GemUNet(3, 2, 4, depth=2, task=task)))
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
