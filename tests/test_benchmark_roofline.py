"""The roofline counts of the layer benchmark (``benchmarks/roofline.py``), by hand on a 3-node graph."""
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from torch_geometric.data import Data

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from cases import _XOnly  # noqa: E402
from roofline import Baselines, layer_work  # noqa: E402

# 3 nodes, 4 edges (j -> i): 0->1, 1->2, 2->0, 1->0; float32 features (4 bytes), int32 indices
GRAPH = Data(edge_index=torch.tensor([[0, 1, 2, 1], [1, 2, 0, 0]]), num_nodes=3)
X = torch.randn(3, 2)


def params(layer):
    return sum(p.numel() for p in layer.parameters())


def test_gcn_counts_its_product_and_the_edges_with_self_loops():
    import torch_geometric.nn as pyg

    layer = _XOnly(pyg.GCNConv(2, 3))
    work = layer_work("GCNConv", layer, GRAPH, X)
    assert work.dense_flops == 2 * 3 * 2 * 3             # x W: [3, 2] @ [2, 3]
    assert work.sparse_flops == 2 * (4 + 3) * 3          # a multiply and an add per entry: 4 edges + 3 loops, 3 columns
    assert (work.flops_fwd, work.flops_fwd_bwd) == (36 + 42, 3 * 36 + 2 * 42)
    assert params(layer) == 9                            # W 2 x 3 and the bias
    # forward: x (6 floats), out (9), parameters (9), edges (8 bytes each); backward: dy (9), x (6),
    # dx (6), parameters read and gradients written (18), the edges again
    assert work.bytes_fwd == 4 * (6 + 9 + 9) + 4 * 8
    assert work.bytes_fwd_bwd == work.bytes_fwd + 4 * (9 + 6 + 6 + 18) + 4 * 8
    with FlopCounterMode(display=False) as count:        # PyTorch's own count of the dense products
        layer(X, GRAPH)
    assert count.get_total_flops() == work.dense_flops


def test_feast_counts_both_linear_maps_of_every_edge():
    import torch_geometric.nn as pyg

    layer = _XOnly(pyg.FeaStConv(2, 3, heads=2))
    work = layer_work("FeaStConv", layer, GRAPH, X)
    # 7 edges with the self-loops: W x_j [7, 2] @ [2, 6] and u (x_j - x_i) [7, 2] @ [2, 2]
    assert work.dense_flops == 2 * 7 * 2 * 6 + 2 * 7 * 2 * 2 == 224
    # per edge: the difference (2), the head weights (2 x 3), the head sum (1 x 3), the mean (3)
    assert work.sparse_flops == 7 * (2 + 6 + 3 + 3) == 98
    with FlopCounterMode(display=False) as count:
        layer(X, GRAPH)
    assert count.get_total_flops() == work.dense_flops


def test_gem_conv_counts_one_operator_per_input_frequency_and_the_weight_blocks_it_multiplies():
    from meshgdl import FieldType
    from meshgdl.nn import GemConv

    layer = GemConv(FieldType([1, 1]), FieldType([1, 1]))  # a scalar and one frequency-1 pair: C = 3
    work = layer_work("GemConv", layer, GRAPH, X)
    # m = 0: output up to frequency 1 needs phases s = 0, 1 -> re of s = 0 (its im is sin 0 = 0),
    # re and im of s = 1: 3 entries an edge, 1 column
    # m = 1: phases s = -2, -1, 0 -> 6 entries an edge, on the 2 columns of the stacked pair
    assert work.sparse_flops == 2 * 4 * 3 * 1 + 2 * 4 * 6 * 2 == 120
    # each phase is read by output frequency |s + m| only, times that frequency's rows of the weight
    # (1 scalar, 2 for the pair): m = 0: s = 0 -> n = 0 (1 channel), s = 1 -> n = 1 (re, im);
    # m = 1 (re, im each): s = -1 -> n = 0, s = -2 and 0 -> n = 1; then the self term, block
    # diagonal in frequency: [3, 1] @ [1, 1] and [3, 2] @ [2, 2]
    assert work.mm_shapes == [(3, 1, 1), (3, 2, 2), (3, 2, 1), (3, 4, 2), (3, 1, 1), (3, 2, 2)]
    assert work.dense_flops == 2 * 3 * (1 * 1 + 2 * 2 + 2 * 1 + 4 * 2) + 2 * 3 * (1 + 4) == 120
    assert work.flops_fwd_bwd == 3 * 120 + 2 * 120
    p = params(layer)
    edges = 4 * (8 + 2 * 4)  # the edge list and two floats an edge (angle, transport)
    assert work.bytes_fwd == 4 * (3 * 3 + 3 * 3 + p) + edges
    # the CSR products: operator [9, 3] with 12 entries on 1 column; for m = 1 the pair operator
    # [9, 6] with 24 entries on the stacked pairs [6, 2]
    csr = [12 * 8 + 10 * 4 + (3 + 9) * 1 * 4, 24 * 8 + 10 * 4 + (6 + 9) * 2 * 4]
    assert work.sparse_bytes_fwd == sum(csr)
    # backward: the transposes, [3, 9] and [6, 9], with 4 and 7 row pointers
    assert work.sparse_bytes_bwd == sum(csr) - (9 - 3 + 9 - 6) * 4
    # PyTorch's count of the products that grow with the graph: two disjoint copies of it add the
    # dense work once more (the weight matrices, built once a call, are not the layer's per-node work)
    counts = []
    for copies in (1, 2):
        ei = torch.cat([GRAPH.edge_index + 3 * c for c in range(copies)], 1)
        graph = Data(edge_index=ei, edge_logmap=torch.randn(4 * copies, 2), edge_transport=torch.randn(4 * copies),
                     num_nodes=3 * copies)
        with FlopCounterMode(display=False) as count:
            layer(torch.randn(3 * copies, 3), graph)
        counts.append(count.get_total_flops())
    assert counts[1] - counts[0] == work.dense_flops


def test_iso_conv_counts_its_operator_and_two_products():
    from meshgdl.nn import IsoConv

    layer = IsoConv(2, 3)
    work = layer_work("IsoConv", layer, GRAPH, X)
    assert work.sparse_flops == 2 * 4 * 2                          # one entry an edge, 2 columns
    assert work.dense_flops == 2 * (2 * 3 * 2 * 3)                 # neighbour and root weights
    assert work.bytes_fwd == 4 * (6 + 9 + params(layer)) + 4 * 8   # no geometry: a plain mean


def test_copy_baseline_counts_the_read_and_the_write():
    base = Baselines(lambda fn: (fn(), 0.5)[1], "cpu")  # every timed call takes 0.5 s
    assert base.copy_rate(1000) == 2 * 1000 / 0.5
    assert base.mm_rate([(3, 10, 3)]) == (180 / 0.5, 3 * 180 / 1.0)
