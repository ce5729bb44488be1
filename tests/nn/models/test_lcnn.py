import pytest
import torch
from torch_geometric.data import Batch

from meshgdl.geometry import lattice_graph
from meshgdl.nn import LCNN
from meshgdl.testing import assert_lattice_gauge_equivariant, assert_lattice_translation_equivariant


@pytest.mark.parametrize("group,shape", [("SU2", (4, 5)), ("SU3", (3, 3, 4)), ("U1", (6, 4))])
def test_lcnn_is_gauge_and_translation_equivariant(group, shape):
    torch.manual_seed(0)
    model = LCNN(channels=(3, 2), out_channels=2, kernel_size=2, dim=len(shape),
                 loop_sizes=((1, 1), (1, 2))).double()
    graph = lattice_graph(shape, group=group, links="random", generator=torch.Generator().manual_seed(1))
    assert assert_lattice_gauge_equivariant(model, graph) < 1e-10
    assert assert_lattice_translation_equivariant(model, graph) < 1e-10
    assert model(graph).shape == (graph.num_nodes, 2) and model(graph).dtype == torch.float64


def test_pooling_over_a_batch():
    torch.manual_seed(0)
    model = LCNN(channels=(2,), pool=True, activation=False).double()
    a = lattice_graph((4, 4), group="SU2", links="random")
    b = lattice_graph((3, 5), group="SU2", links="random")
    y = model(Batch.from_data_list([a, b]))
    assert y.shape == (2, 1)
    assert torch.allclose(y, torch.cat([model(a), model(b)]), atol=1e-13)


def test_lcnn_can_express_the_2x2_loop():
    # two blocks of kernel_size 1 on plaquettes reach the 2x2 Wilson loop: set the weights by hand
    from meshgdl import observables as obs

    model = LCNN(channels=(1, 1), activation=False).double()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        # block 1: H = T_{+0}[P]; F = H P (the 2x1 rectangle); index 1 of the paths is +0, one step
        model.convs[0].weight[0, 1, 0] = 1
        model.bilinears[0].weight[0, 0, 0, 0] = 1
        # block 2: H = T_{+1}[R]; F = H R, whose trace is the trace of R T_{+1}[R] = W(2x2)
        model.convs[1].weight[0, 2, 0] = 1
        model.bilinears[1].weight[0, 0, 0, 0] = 1
        model.readout.linear.weight[0, 0] = 1
    graph = lattice_graph((5, 4), group="SU2", links="random", generator=torch.Generator().manual_seed(2))
    assert torch.allclose(model(graph)[:, 0], obs.traced_wilson_loops(graph, 2), atol=1e-12)
