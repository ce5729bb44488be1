"""Coincident vertices and pinch vertices: a repair never changes the topology of a manifold mesh."""
import logging
import math

import numpy as np
import pytest
import torch
import trimesh

from meshgdl.geometry import face_holonomy, load_mesh, mesh_graph
from tests.conftest import require_data

F64 = torch.float64


def icosphere(sub=1):
    m = trimesh.creation.icosphere(subdivisions=sub)
    return np.array(m.vertices), np.array(m.faces)


def chi(g):
    return g.num_nodes - g.num_edges // 2 + g.face.shape[1]


def touching_sphere():
    """An icosphere with vertex b moved onto vertex a: two distinct vertices, each with its own
    closed fan, at identical coordinates (a and b share no edge and no neighbour)."""
    v, f = icosphere(1)
    edges = {tuple(e) for e in np.sort(trimesh.Trimesh(v, f, process=False).edges, 1)}
    nbrs = [{y for x, y in edges if x == a} | {x for x, y in edges if y == a} for a in range(len(v))]
    b = next(b for b in range(1, len(v)) if b not in nbrs[0] and not nbrs[0] & nbrs[b])
    v = v.copy()
    v[b] = v[0]
    return v, f, b


def soup(v, f):
    """Every face with its own three vertices, as in an STL file."""
    return v[f].reshape(-1, 3), np.arange(3 * len(f)).reshape(-1, 3)


@pytest.mark.parametrize("repair", [False, True])
def test_coincident_distinct_vertices_keep_the_topology(repair, caplog):
    v, f, b = touching_sphere()
    with caplog.at_level(logging.WARNING, logger="meshgdl"):
        g = mesh_graph(v, f, repair=repair, dtype=F64)
    assert g.num_nodes == len(v) and chi(g) == 2
    assert abs(float(face_holonomy(g).sum()) - 4 * math.pi) < 1e-8
    assert f"0 and {b}" in caplog.text and "pinch" in caplog.text


def test_a_real_closed_mesh_with_a_touching_vertex_stays_a_sphere(caplog):
    """pymeshlab's cow.obj holds vertices 44 and 2903 at one position, each with its own fan."""
    with caplog.at_level(logging.WARNING, logger="meshgdl"):
        g = load_mesh(require_data("pymeshlab", "cow.obj"), repair=True, dtype=F64)
    assert g.num_nodes == 2904 and chi(g) == 2  # merging them made chi 1
    assert "44 and 2903" in caplog.text


def test_a_face_soup_is_merged_back_into_the_closed_mesh():
    v, f = icosphere(1)
    sv, sf = soup(v, f)
    with pytest.raises(ValueError, match="repeat the coordinates.*repair=True"):
        mesh_graph(sv, sf)
    g = mesh_graph(sv, sf, repair=True, dtype=F64)
    assert g.num_nodes == len(v) and chi(g) == 2
    assert abs(float(face_holonomy(g).sum()) - 4 * math.pi) < 1e-8
    assert torch.equal(g.pos[g.vertex_map], torch.as_tensor(sv))


def test_a_soup_merge_that_would_pinch_is_refused_and_reported(caplog):
    """The soup of the touching sphere: the split copies merge, the two touching vertices stay."""
    v, f, b = touching_sphere()
    sv, sf = soup(v, f)
    with caplog.at_level(logging.WARNING, logger="meshgdl"):
        g = mesh_graph(sv, sf, repair=True, dtype=F64)
    assert g.num_nodes == len(v) and chi(g) == 2
    assert "kept" in caplog.text and "separate fans, so merging would make a pinch vertex" in caplog.text
    # the two nodes at the shared position each have a proper fan: five or more neighbours
    at = (g.pos == torch.as_tensor(v[0])).all(1).nonzero()[:, 0]
    assert len(at) == 2
    assert torch.bincount(g.edge_index[1], minlength=g.num_nodes)[at].min() >= 5


def test_a_merge_that_would_overload_edges_is_refused(caplog):
    """Two copies of a sphere on top of each other: merging would put every edge in four faces."""
    v, f = icosphere(1)
    with caplog.at_level(logging.WARNING, logger="meshgdl"):
        g = mesh_graph(np.concatenate([v, v]), np.concatenate([f, f + len(v)]), repair=True, dtype=F64)
    assert g.num_nodes == 2 * len(v) and chi(g) == 4
    assert "in 4 faces" in caplog.text


def test_pinch_vertices_are_logged(caplog):
    """Two closed tetrahedra sharing one vertex: built, with a warning naming it."""
    tet = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    # the second is the first turned by a half-turn about z, so both wind outwards
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, 0, 0], [0, -1, 0], [0, 0, 1.0]])
    v[6, 2] += 0.5  # not onto vertex 3
    other = np.array([0, 4, 5, 6])[tet]
    with caplog.at_level(logging.WARNING, logger="meshgdl"):
        g = mesh_graph(v, np.concatenate([tet, other]), dtype=F64)
    assert chi(g) == 3  # one vertex short of two spheres
    assert "1 pinch vertices" in caplog.text and "first: 0" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="meshgdl"):
        mesh_graph(v[:4], tet, dtype=F64)
    assert "pinch" not in caplog.text
