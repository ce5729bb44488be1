import pytest
import torch
from torch_geometric.data import Batch

from meshgdl.field_type import FieldType
from meshgdl.geometry import grid_graph, grid_rotation, healpix_grid_graph, healpix_rotation
from meshgdl.nn.models import CNGroupCNN
from meshgdl.testing import assert_symmetry_equivariant

from ..domains import randomize_biases


def net(task, order=4):
    return randomize_biases(CNGroupCNN(2, 3, order=order, channels=(3, 4), task=task)).double()


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("order", [4, 8])
@pytest.mark.parametrize("task", ["node", "graph"])
def test_quarter_turns_of_the_image_move_node_outputs_and_keep_graph_outputs(task, order, periodic):
    graph = grid_graph(6, 6, connectivity=8, periodic=periodic, dtype=torch.float64)
    image = torch.randn(graph.num_nodes, 2, dtype=torch.float64)
    model = net(task, order)
    for k in (1, 2, 3):
        perm, angles = grid_rotation(6, 6, k)
        assert assert_symmetry_equivariant(model, image, graph, perm, angles, FieldType.scalars(2)) < 1e-10
    with torch.no_grad():  # and literally, in the words of the task
        out, out_r = model(image, graph), model(image[perm], graph)
    assert out.shape == ((36, 3) if task == "node" else (1, 3))
    torch.testing.assert_close(out_r, out[perm] if task == "node" else out, atol=1e-12, rtol=0)


class FirstOrientation(torch.nn.Module):
    def forward(self, x):
        return x.unflatten(-1, (-1, 4))[..., 0]


def test_reading_one_orientation_instead_of_pooling_breaks_the_invariance():
    """The check can fail: one orientation of a regular field turns with the image."""
    graph = grid_graph(6, 6, connectivity=8, dtype=torch.float64)
    image = torch.randn(36, 2, dtype=torch.float64)
    perm, angles = grid_rotation(6, 6, 1)
    model = net("graph")
    model.pool = FirstOrientation()
    with pytest.raises(AssertionError, match="symmetry equivariance: relative error"):
        assert_symmetry_equivariant(model, image, graph, perm, angles, FieldType.scalars(2))


@pytest.mark.parametrize("task", ["node", "graph"])
def test_polar_quarter_turns_of_healpix(task):
    graph = healpix_grid_graph(2, dtype=torch.float64)
    x = torch.randn(graph.num_nodes, 2, dtype=torch.float64)
    model = net(task)
    for k in (1, 2, 3):
        perm, angles = healpix_rotation(graph, k)
        assert assert_symmetry_equivariant(model, x, graph, perm, angles, FieldType.scalars(2)) < 1e-10


def test_a_batch_gives_each_graph_its_own_output():
    graphs = [grid_graph(4, 4, connectivity=8, periodic=True, dtype=torch.float64) for _ in range(3)]
    for g in graphs:
        g.x = torch.randn(16, 2, dtype=torch.float64)
    batch = Batch.from_data_list(graphs)
    model = net("graph")
    out = model(batch.x, batch)
    assert out.shape == (3, 3)
    for k, g in enumerate(graphs):
        torch.testing.assert_close(out[k:k + 1], model(g.x, g), atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="task must be 'node' or 'graph'"):
        CNGroupCNN(1, 2, task="pixel")
