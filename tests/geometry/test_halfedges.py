"""The edge and fan structure behind mesh_graph, against independent oracles: sets of face sides,
scipy's connected components (pinch vertices), and the corner angles from positions."""
import numpy as np
import pytest
import torch
import trimesh

from meshgdl.geometry.halfedges import argsort, boundary_halfedges, fan_layout, mesh_edges, repeated_edges
from meshgdl.geometry.intrinsic import corner_angles, corner_angles_from_sides
from meshgdl.geometry.mesh_repair import pinch_vertices
from meshgdl.geometry.tangent import first_tangent_neighbour
from meshgdl.graph import all_finite

from .test_mesh import icosphere


def open_cap():
    v, f = icosphere(2)
    keep = v[f].mean(1)[:, 2] > 0.3
    mesh = trimesh.Trimesh(v, f[keep], process=False)
    mesh.remove_unreferenced_vertices()
    return np.array(mesh.vertices), np.array(mesh.faces)


def bowtie():
    """Two open fans that meet at their apex 0: a pinch vertex with no non-manifold edge."""
    ring = [[np.cos(a), np.sin(a), 0.1 * np.sin(3 * a)] for a in np.linspace(0, 2 * np.pi, 9)[:-1]]
    v = np.array([[0, 0, 0]] + ring + [[x, y, 0.5] for x, y, _ in ring])
    f = [[0, 1 + k, 1 + (k + 1) % 8] for k in range(7)] + [[0, 9 + k, 9 + (k + 1) % 8] for k in range(7)]
    return v, np.array(f)


def two_tetrahedra():
    """Two closed tetrahedra sharing vertex 0: a pinch of two closed fans."""
    tet = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, 0, 0], [0, -1, 0], [0, 0, 1.5]])
    return v, np.concatenate([tet, np.array([0, 4, 5, 6])[tet]])


def fins():
    """Three faces on edge 0-1: a non-manifold edge."""
    v = np.array([[0, 0, 0], [0, 0, 1], [1, 0, 0.5], [-1, 0.3, 0.5], [0, -1, 0.5]], float)
    return v, np.array([[0, 1, 2], [1, 0, 3], [0, 1, 4]])


MESHES = {"sphere": lambda: icosphere(2), "cap": open_cap, "bowtie": bowtie, "tetrahedra": two_tetrahedra,
          "fins": fins}


@pytest.mark.parametrize("name", MESHES)
def test_edges_are_the_face_sides_both_ways_sorted_by_target(name):
    v, f = MESHES[name]()
    e = mesh_edges(f, len(v))
    src, dst = e.edge_index.numpy()
    sides = {(int(a), int(b)) for t in f for a, b in zip(t, np.roll(t, -1))}
    both = sorted(sides | {(b, a) for a, b in sides}, key=lambda p: (p[1], p[0]))
    assert list(zip(src.tolist(), dst.tolist())) == both
    rev = e.edge_reverse.numpy()
    assert (src[rev] == dst).all() and (dst[rev] == src).all()
    # every halfedge runs along its directed edge; edges ptr[i]:ptr[i + 1] end at i
    assert (src[e.halfedge_edge] == f.reshape(-1)).all()
    assert (dst[e.halfedge_edge] == np.roll(f, -1, axis=1).reshape(-1)).all()
    assert (np.repeat(np.arange(len(v)), np.diff(e.ptr)) == dst).all()


@pytest.mark.parametrize("name", MESHES)
def test_corner_before_shares_the_first_side_as_its_last(name):
    v, f = MESHES[name]()
    e = mesh_edges(f, len(v))
    corner = np.flatnonzero(e.before >= 0)
    prev = e.before[corner]
    vert = f.reshape(-1)
    assert (vert[prev] == vert[corner]).all()
    # the corner before c has c's first side (to the next corner of c's face) as its last side
    last = np.roll(f, 1, axis=1).reshape(-1)
    assert (last[prev] == np.roll(f, -1, axis=1).reshape(-1)[corner]).all()


@pytest.mark.parametrize("name", ["sphere", "cap", "bowtie", "tetrahedra"])
def test_fan_layout_finds_the_pinch_vertices(name):
    """Without non-manifold edges, the vertices whose corners form no single fan are exactly the
    pinch vertices that scipy's connected components find."""
    v, f = MESHES[name]()
    e = mesh_edges(f, len(v))
    assert not e.repeated.any()
    bad = np.flatnonzero(fan_layout(f, e).bad)
    assert bad.tolist() == pinch_vertices(f, len(v)).tolist()
    assert bool(len(bad)) == (name in ("bowtie", "tetrahedra"))


@pytest.mark.parametrize("name", MESHES)
def test_boundary_and_repeated_edges_count_the_faces_of_each_edge(name):
    """Against a count of each undirected side: a boundary halfedge's edge lies in one face, a
    repeated one's in more than two."""
    from collections import Counter

    v, f = MESHES[name]()
    sides = [(int(a), int(b)) for t in f for a, b in zip(t, np.roll(t, -1))]
    faces_of = Counter(tuple(sorted(s)) for s in sides)
    e = mesh_edges(f, len(v))
    assert boundary_halfedges(e).tolist() == [faces_of[tuple(sorted(s))] == 1 for s in sides]
    assert [tuple(p) for p in repeated_edges(f, e.repeated).tolist()] == sorted(k for k, n in faces_of.items() if n > 2)


def test_the_ends_of_non_manifold_edges_have_no_fan():
    v, f = fins()
    e = mesh_edges(f, len(v))
    assert e.repeated.reshape(-1, 3)[:, 0].all() and e.repeated.sum() == 3
    assert np.flatnonzero(fan_layout(f, e).bad).tolist() == [0, 1]


def test_corner_angles_from_side_lengths_match_positions():
    """Slivers, right and obtuse angles: the side-length formula agrees with atan2 of positions."""
    v = np.array([[0, 0, 0], [1, 0, 0], [0.5, 1e-7, 0], [0, 1, 0], [-3, 0.01, 0], [1, 1, 1]], float)
    f = np.array([[0, 1, 2], [0, 1, 3], [0, 1, 4], [1, 3, 5]])
    pos, face = torch.from_numpy(v), torch.from_numpy(f)
    x = pos[face]
    sides = x.roll(-1, 1) - x
    side_sq = (sides * sides).sum(-1)
    area2 = torch.linalg.cross(x[:, 1] - x[:, 0], x[:, 2] - x[:, 0]).norm(dim=-1)
    assert torch.allclose(corner_angles_from_sides(side_sq, area2), corner_angles(pos, face), rtol=0, atol=1e-12)


def test_first_tangent_neighbour_from_the_row_pointer_matches_the_search():
    v, f = icosphere(2)
    e = mesh_edges(f, len(v))
    pos = torch.from_numpy(v)
    normal = pos.clone()
    normal[5] = pos[e.edge_index[0, e.ptr[5]]] - pos[5]  # the first neighbour lies on the normal line
    searched = first_tangent_neighbour(pos, normal, e.edge_index)
    assert torch.equal(first_tangent_neighbour(pos, normal, e.edge_index, ptr=torch.from_numpy(e.ptr)), searched)


def test_argsort_is_stable_and_returns_the_sorted_keys():
    keys = np.random.default_rng(0).integers(0, 50, 1000)
    order, ordered = argsort(keys, True)
    assert (order == np.argsort(keys, kind="stable")).all() and (ordered == np.sort(keys)).all()
    kept = keys.copy()
    assert (argsort(keys) == order).all() and (keys == kept).all()  # alone, and the input untouched
    big = np.array([2**62, 3, 2**62, 1])  # too large to pack positions beside: plain argsort
    assert argsort(big).tolist() == [3, 1, 0, 2]


def test_all_finite_survives_a_sum_that_overflows():
    assert all_finite(torch.tensor([1e308, 1e308], dtype=torch.float64))
    assert all_finite(torch.tensor([6e4, 6e4], dtype=torch.float16))
    for bad in (float("nan"), float("inf"), -float("inf")):
        assert not all_finite(torch.tensor([1.0, bad, -1.0]))
    assert not all_finite(torch.tensor([float("inf"), -float("inf")]))


@pytest.mark.parametrize("num_v", [1000, 2**31])
def test_pairs_sort_stably_whether_or_not_their_keys_fit_beside_the_positions(num_v):
    """2 x 31 bits of vertex ids leave no room for positions: the two-pass sort must agree."""
    from meshgdl.geometry.halfedges import _sort_pairs

    rng = np.random.default_rng(1)
    a, b = rng.integers(0, num_v, 5000), rng.integers(0, num_v, 5000)
    a[::7], b[::7] = a[0], b[0]  # ties, whose order must be kept
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    order, keys = _sort_pairs(lo.copy(), hi.copy(), num_v)  # it overwrites its inputs
    reference = np.argsort(lo * num_v + hi, kind="stable")
    assert (order == reference).all() and (keys == (lo * num_v + hi)[reference]).all()
