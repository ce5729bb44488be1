import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import trimesh
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from meshgdl import FieldType, FramedGraph, gauge_transform, permute_nodes
from meshgdl.geometry import face_holonomy, mesh_graph
from meshgdl.graph import rotate_frames, wrap_angle

F64 = torch.float64


def sphere_graph(sub=1, dtype=F64):
    m = trimesh.creation.icosphere(subdivisions=sub)
    return mesh_graph(np.array(m.vertices), np.array(m.faces), dtype=dtype)


def angles(n, seed=0):
    return torch.rand(n, generator=torch.Generator().manual_seed(seed), dtype=F64) * 2 * math.pi


def test_import_is_fast_and_does_not_load_torch():
    code = "import sys, meshgdl; assert 'torch' not in sys.modules; meshgdl.geometry; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


# ---------------------------------------------------------------- gauge action
def test_gauge_transform_follows_the_convention(dtype):
    g = sphere_graph(dtype=dtype)
    p = angles(g.num_nodes).to(dtype)
    t = gauge_transform(g, p)
    j, i = g.edge_index
    # a tangent vector fixed in space has coordinates R(-p) v in the turned frame
    assert torch.allclose(t.frame[:, 0], torch.cos(p)[:, None] * g.frame[:, 0] + torch.sin(p)[:, None] * g.frame[:, 1])
    c, s = torch.cos(p[i]), torch.sin(p[i])
    x, y = g.edge_logmap.unbind(-1)
    assert torch.allclose(t.edge_logmap, torch.stack([c * x + s * y, -s * x + c * y], -1), atol=1e-5)
    assert torch.allclose(t.edge_transport, g.edge_transport - p[i] + p[j])
    assert g.frame is not t.frame  # the input is untouched


def test_gauge_transform_composes_and_keeps_holonomy():
    g = sphere_graph(2)
    p, q = angles(g.num_nodes, 1), angles(g.num_nodes, 2)
    twice = gauge_transform(gauge_transform(g, p), q)
    once = gauge_transform(g, p + q)
    assert torch.allclose(twice.edge_logmap, once.edge_logmap, atol=1e-12)
    assert torch.allclose(twice.frame, once.frame, atol=1e-12)
    assert wrap_angle(face_holonomy(once) - face_holonomy(g)).abs().max() < 1e-12


def test_vector_features_transform_like_coordinates_of_fixed_vectors():
    """Coordinates of fixed ambient tangent vectors, read in turned frames, equal
    FieldType.vectors(1).transform of the coordinates in the old frames."""
    g = sphere_graph(2)
    p = angles(g.num_nodes, 3)
    ambient = torch.randn(g.num_nodes, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    coords = torch.einsum("nab,nb->na", g.frame[:, :2], ambient)
    turned = rotate_frames(g.frame, p)
    expected = torch.einsum("nab,nb->na", turned[:, :2], ambient)
    assert torch.allclose(FieldType.vectors(1).transform(coords, p), expected, atol=1e-12)
    t = gauge_transform(FramedGraph(**{**dict(g.items()), "x": coords}), p, field_type=FieldType.vectors(1))
    assert torch.allclose(t.x, expected, atol=1e-12)


def test_field_type_layout_and_action():
    ft = FieldType([2, 1, 3])
    assert ft.dim == 2 + 2 + 6 and ft.max_frequency == 2
    assert ft.frequencies().tolist() == [0, 0, 1, 1, 2, 2, 2, 2, 2, 2]
    x = torch.randn(5, ft.dim, dtype=F64)
    p = angles(5)
    y = ft.transform(x, p)
    assert torch.equal(y[:, :2], x[:, :2])
    # frequency 2 turns twice as fast: transforming by p/2 twice at frequency 2 == by p at frequency 1
    assert torch.allclose(FieldType([0, 0, 1]).transform(x[:, 4:6], p / 2), FieldType([0, 1]).transform(x[:, 4:6], p))
    assert torch.allclose(ft.transform(y, -p), x)
    with pytest.raises(ValueError, match="channels"):
        ft.transform(x[:, :3], p)
    with pytest.raises(ValueError, match="non-negative"):
        FieldType([-1, 2])


def test_permute_nodes_relabels_consistently():
    g = sphere_graph(1)
    perm = torch.randperm(g.num_nodes, generator=torch.Generator().manual_seed(0))
    h = permute_nodes(g, perm)
    assert torch.equal(h.pos, g.pos[perm])
    assert torch.equal(h.pos[h.edge_index], g.pos[g.edge_index])
    assert torch.allclose(face_holonomy(h), face_holonomy(g))
    with pytest.raises(ValueError, match="permutation"):
        permute_nodes(g, torch.zeros(g.num_nodes, dtype=torch.long))


def test_edge_id_finds_edges_and_reports_missing_ones():
    g = sphere_graph(1)
    ids = torch.tensor([5, 17, 200])
    assert torch.equal(g.edge_id(g.edge_index[0, ids], g.edge_index[1, ids]), ids)
    with pytest.raises(KeyError, match="no edge 0 -> 0"):
        g.edge_id(torch.tensor([0]), torch.tensor([0]))


# ---------------------------------------------------------------- batching
def test_batches_keep_every_attribute_aligned():
    graphs = [sphere_graph(1), sphere_graph(2), sphere_graph(1)]
    batch = Batch.from_data_list(graphs)
    offset_n = offset_e = offset_f = 0
    for k, g in enumerate(graphs):
        sub = batch.get_example(k)
        assert torch.equal(sub.edge_index, g.edge_index) and torch.equal(sub.face, g.face)
        assert torch.equal(sub.edge_reverse, g.edge_reverse) and torch.equal(sub.frame, g.frame)
        n, e = g.num_nodes, g.num_edges
        assert torch.equal(batch.edge_reverse[offset_e:offset_e + e], g.edge_reverse + offset_e)
        f = g.face.shape[1]
        assert torch.equal(batch.face[:, offset_f:offset_f + f], g.face + offset_n)
        assert torch.equal(batch.edge_index[:, offset_e:offset_e + e], g.edge_index + offset_n)
        offset_n, offset_e, offset_f = offset_n + n, offset_e + e, offset_f + f
    # the batch is one graph: holonomy over all faces is the sum of the parts
    assert torch.allclose(face_holonomy(batch), torch.cat([face_holonomy(g) for g in graphs]))
    loader = DataLoader(graphs, batch_size=2)
    first = next(iter(loader))
    assert first.num_graphs == 2 and first.num_nodes == graphs[0].num_nodes + graphs[1].num_nodes


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("corrupt,message", [
    (lambda g: g.frame.__setitem__((3, 0, 0), float("nan")), "frame has NaN"),
    (lambda g: g.frame.__setitem__((3, 1), -g.frame[3, 1]), "left-handed"),
    (lambda g: g.frame.__setitem__((3, 0), 2 * g.frame[3, 0]), "not orthonormal"),
    (lambda g: g.edge_index.__setitem__((0, 0), 10_000), "outside"),
    (lambda g: g.edge_transport.__setitem__(0, float("inf")), "edge_transport has NaN"),
    (lambda g: setattr(g, "edge_logmap", g.edge_logmap[:, :1]), r"edge_logmap must have shape \[240, 2\]"),
])
def test_validate_names_the_problem(corrupt, message):
    g = sphere_graph(1)
    corrupt(g)
    with pytest.raises(ValueError, match=message):
        g.validate()


@pytest.mark.parametrize("key", ["edge_index", "frame", "edge_logmap", "edge_transport"])
def test_validate_names_a_missing_field(key):
    g = sphere_graph(1)
    del g[key]
    with pytest.raises(ValueError, match=f"invalid FramedGraph: {key} is missing .*builders"):
        g.validate()


@pytest.mark.filterwarnings("ignore:Unable to accurately infer 'num_nodes'")  # PyG's, on the empty graph
def test_validate_names_missing_nodes():
    with pytest.raises(ValueError, match="invalid FramedGraph: num_nodes is missing"):
        FramedGraph().validate()


def test_wrap_angle_in_place_gives_the_same_values():
    # angles far outside (-pi, pi], on the boundary and at multiples of 2 pi
    angle = torch.cat([torch.linspace(-20, 20, 1001, dtype=torch.float64),
                       torch.tensor([math.pi, -math.pi, 2 * math.pi, 0.0, 7 * math.pi], dtype=torch.float64)])
    expected = wrap_angle(angle)
    assert bool(((expected > -math.pi) & (expected <= math.pi)).all())
    # wrapping keeps the angle modulo 2 pi
    assert torch.allclose(torch.cos(expected), torch.cos(angle)) and torch.allclose(torch.sin(expected), torch.sin(angle))
    copy = angle.clone()
    out = wrap_angle(copy, inplace=True)
    assert out is copy and torch.equal(out, expected)
