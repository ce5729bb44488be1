"""distribute() and halo_exchange in one process: what they refuse and what they leave alone."""
import pytest
import torch

from meshgdl import FieldType
from meshgdl.distributed import distribute, halo_exchange, partition_graph
from meshgdl.nn.models import GemResNet

from .cases import build_model, icosphere_graph


def test_one_part_and_the_whole_graph_give_the_model_unchanged():
    graph = icosphere_graph()
    (part,) = partition_graph(graph, assignment=torch.zeros(graph.num_nodes, dtype=torch.long))
    model = build_model("resnet")
    x = torch.randn(graph.num_nodes, 2, dtype=torch.float64)
    y = model(x, graph)
    keys = list(model.state_dict())
    distribute(model)
    assert list(model.state_dict()) == keys  # checkpoints move between one process and many
    torch.testing.assert_close(model(x, graph), y, atol=0, rtol=0)
    torch.testing.assert_close(model(x, part), y, atol=0, rtol=0)


def test_batch_statistics_and_global_pooling_are_refused():
    graph = icosphere_graph()
    (part,) = partition_graph(graph, assignment=torch.zeros(graph.num_nodes, dtype=torch.long))
    model = distribute(GemResNet(2, 3, hidden_type=FieldType.uniform(2, 1), num_blocks=1, norm="batch").double())
    x = torch.randn(graph.num_nodes, 2, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="use GaugeLayerNorm"):
        model(x, part)
    model(x, graph)  # a whole graph trains as before
    model.eval()
    model(x, part)  # running statistics are pointwise
    with pytest.raises(ValueError, match="pool.*GlobalInvariantPool, which distribute does not support"):
        distribute(GemResNet(2, 3, task="graph"))


def test_halo_exchange_checks_its_input():
    graph = icosphere_graph()
    parts = partition_graph(graph, assignment=torch.arange(graph.num_nodes) % 2)
    x = torch.randn(graph.num_nodes, 2)
    with pytest.raises(ValueError, match="pass x\\[part.owned\\]"):
        halo_exchange(x, parts[0])
    with pytest.raises(RuntimeError, match="init_process_group"):
        halo_exchange(x[parts[0].owned], parts[0])


def test_the_part_may_be_passed_by_keyword():
    graph = icosphere_graph()
    (part,) = partition_graph(graph, assignment=torch.zeros(graph.num_nodes, dtype=torch.long))
    conv = distribute(build_model("stack").convs[0])
    x = torch.randn(graph.num_nodes, 2, dtype=torch.float64)
    torch.testing.assert_close(conv(x, graph=part), conv(x, graph), atol=0, rtol=0)
