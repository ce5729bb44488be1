import pytest
import torch
from torch_geometric.data import Batch

from meshgdl.field_type import FieldType
from meshgdl.nn.models import GemResNet
from meshgdl.testing import assert_gauge_equivariant, assert_symmetry_equivariant

from ..domains import DOMAINS, check_all, domain, grid_rotation, randomize_biases

HIDDEN = FieldType([2, 2, 1])


@pytest.mark.parametrize("name", DOMAINS)
@pytest.mark.parametrize("task", ["node", "graph"])
def test_gem_resnet_is_equivariant_with_random_biases(name, task):
    graph, build = domain(name)
    cutoff = float(graph.edge_logmap.norm(dim=-1).max())
    model = randomize_biases(GemResNet(3, 2, HIDDEN, num_blocks=2, task=task, num_radial=2, cutoff=cutoff))
    x = torch.randn(graph.num_nodes, 3, dtype=torch.float64)
    errors = check_all(model, x, graph, build, FieldType.scalars(3))
    assert max(errors.values()) < 1e-10
    out = model.double()(x, graph)
    assert out.shape == ((graph.num_nodes, 2) if task == "node" else (1, 2))


@pytest.mark.parametrize("options", [{"nonlinearity": "norm", "norm": "layer"}, {"nonlinearity": "gated", "norm": None},
                                     {"hidden_type": FieldType([0, 2, 1]), "nonlinearity": "norm"}])
def test_gem_resnet_variants_are_gauge_equivariant(options):
    graph, _ = domain("mesh")
    hidden = options.pop("hidden_type", HIDDEN)
    model = randomize_biases(GemResNet(FieldType([1, 1]), 2, hidden, num_blocks=1, **options))
    x = torch.randn(graph.num_nodes, 3, dtype=torch.float64)
    assert assert_gauge_equivariant(model, x, graph, FieldType([1, 1])) < 1e-10


def test_gem_resnet_is_exactly_equivariant_to_quarter_turns_of_an_image():
    graph, _ = domain("grid")
    perm, angles = grid_rotation(8)
    model = randomize_biases(GemResNet(1, 3, HIDDEN, num_blocks=2))
    image = torch.randn(graph.num_nodes, 1, dtype=torch.float64)
    assert assert_symmetry_equivariant(model, image, graph, perm, angles, FieldType.scalars(1)) < 1e-10
    # and literally: rotating the image rotates the output map
    model = model.double().eval()
    with torch.no_grad():
        assert torch.allclose(model(image[perm], graph), model(image, graph)[perm], atol=1e-12)


def test_gem_resnet_on_a_batch_of_graphs():
    graphs = [domain("torus")[0], domain("sphere")[0]]
    for g in graphs:
        g.x = torch.randn(g.num_nodes, 1, dtype=torch.float64)
    batch = Batch.from_data_list(graphs)
    model = randomize_biases(GemResNet(1, 4, HIDDEN, task="graph", norm="layer")).double()
    out = model(batch.x, batch)
    assert out.shape == (2, 4)
    for k, g in enumerate(graphs):
        assert torch.allclose(out[k], model(g.x, g)[0], atol=1e-12)


def test_gem_resnet_rejects_unknown_options():
    with pytest.raises(ValueError, match="task"):
        GemResNet(1, 1, task="edge")
    with pytest.raises(ValueError, match="nonlinearity"):
        GemResNet(1, 1, nonlinearity="tanh")
    with pytest.raises(ValueError, match="norm"):
        GemResNet(1, 1, norm="group")


def test_gem_resnet_in_float32_and_float64(dtype):
    graph, _ = domain("torus")
    for key in ("pos", "frame", "edge_logmap", "edge_transport"):
        graph[key] = graph[key].to(dtype)
    model = randomize_biases(GemResNet(1, 2, HIDDEN, num_blocks=1)).to(dtype).eval()
    x = torch.randn(graph.num_nodes, 1, dtype=dtype)
    out = model(x, graph)
    assert out.dtype == dtype and bool(torch.isfinite(out).all())
    graph64 = graph.clone()
    for key in ("pos", "frame", "edge_logmap", "edge_transport"):
        graph64[key] = graph[key].double()
    ref = model.double()(x.double(), graph64)
    assert torch.allclose(out.double(), ref, atol=1e-4 if dtype == torch.float32 else 1e-12)
