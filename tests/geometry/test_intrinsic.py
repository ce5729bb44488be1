"""The intrinsic connection: Descartes' Gauss-Bonnet on every manifold mesh, isometry invariance,
agreement with geometry-central, and the normal connection's failures it removes."""
import logging
import math

import numpy as np
import pytest
import torch
import trimesh

from meshgdl.geometry import boundary_turning, face_folds, face_holonomy, gauss_bonnet, load_mesh, mesh_graph
from meshgdl.geometry.intrinsic import corner_defects
from meshgdl.graph import wrap_angle
from tests.conftest import require_data

from .test_mesh import genus2_surface, icosphere

F64 = torch.float64


def transports_around_faces(g):
    """Sum of the three transports around every face, as stored (no lift): ``[F]``."""
    f = g.face.t()
    return g.edge_transport[g.edge_id(f.flatten(), f.roll(-1, 1).flatten()).view(f.shape)].sum(1)


def assert_exact_gauss_bonnet(g, tol=1e-8):
    gb = gauss_bonnet(g)
    assert abs(gb.defect) < tol, gb
    # the transports themselves carry the curvature: no face needs the lift to agree
    lift = corner_defects(g.pos, g.face.t())
    assert wrap_angle(transports_around_faces(g) - lift).abs().max() < 1e-10


# ---------------------------------------------------------------- meshes
def tetrahedron(kind):
    v = {"corner": [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]],
         "needle": [[1, 0, 0], [-1, 0, 0], [0, 0.1, 0.1], [0, -0.1, 0.1]],
         "flat": [[2, 0, 0], [-2, 0, 0], [0, 1, 0.1], [0, -1, 0.1]]}[kind]
    v = np.array(v, float)
    return v, np.array(trimesh.convex.convex_hull(v).faces)


def opposite_normal_tetrahedron():
    """A consistently oriented tetrahedron whose vertex normals at 0 and 1 are exactly opposite."""
    from scipy.optimize import brentq

    def build(t):
        v = np.array([[1, 0, 0], [-1, 0, 0], [0, 0.5, t], [0, 0.5, -t]])
        return v, np.array(trimesh.convex.convex_hull(v).faces)

    def normal_y(t):
        return float(mesh_graph(*build(t), dtype=F64, cache=False).frame[0, 2, 1])

    return build(brentq(normal_y, 0.5, 1.0, xtol=1e-15))


def folded_sphere():
    """An icosphere with a few vertices pushed through the surface, and their neighbours folded."""
    v, f = icosphere(2)
    v = v.copy()
    v[[0, 17, 40, 41, 90]] *= -0.3
    return v, f


def sliver_sphere(eps=1e-4):
    """Every face of an icosphere split at a point next to one of its edges: two slivers a face."""
    v, f = icosphere(2)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    p = (0.5 - eps) * (a + b) + 2 * eps * c
    k = np.arange(len(v), len(v) + len(f))
    faces = np.concatenate([np.stack([f[:, 0], f[:, 1], k], 1), np.stack([f[:, 1], f[:, 2], k], 1),
                            np.stack([f[:, 2], f[:, 0], k], 1)])
    return np.concatenate([v, p]), faces


def cap():
    """A spherical cap (a disc, chi = 1) cut from an icosphere."""
    v, f = icosphere(3)
    m = trimesh.Trimesh(v, f[v[f].mean(1)[:, 2] < 0.3], process=False)
    m.remove_unreferenced_vertices()
    return np.array(m.vertices), np.array(m.faces)


def holed_bunny():
    """The watertight bunny with three holes cut into it (chi = 2 - 3)."""
    g = load_mesh(require_data("pymeshlab", "bunny.obj"), dtype=F64, connection="normal")
    v, f = g.pos.numpy(), g.face.t().numpy()
    drop = np.zeros(len(f), bool)
    for seed in (0, 5000, 20000):
        centre = v[f[seed]].mean(0)
        drop |= np.linalg.norm(v[f].mean(1) - centre, axis=1) < 0.004
    m = trimesh.Trimesh(v, f[~drop], process=False)
    m.remove_unreferenced_vertices()
    return np.array(m.vertices), np.array(m.faces)


def octahedron():
    v = np.concatenate([np.eye(3), -np.eye(3)])
    return v, np.array(trimesh.convex.convex_hull(v).faces)


def torus():
    t = trimesh.creation.torus(1.0, 0.35, major_sections=48, minor_sections=24)
    return np.array(t.vertices), np.array(t.faces)


SYNTHETIC = {
    "sphere": lambda: icosphere(3), "genus1": torus, "genus2": genus2_surface,
    "tetrahedron": lambda: tetrahedron("corner"), "needle tetrahedron": lambda: tetrahedron("needle"),
    "flat tetrahedron": lambda: tetrahedron("flat"), "octahedron": octahedron,
    "folded": folded_sphere, "slivers": sliver_sphere,
}


@pytest.mark.parametrize("name", list(SYNTHETIC))
def test_gauss_bonnet_is_exact_on_closed_synthetic_meshes(name):
    v, f = SYNTHETIC[name]()
    g = mesh_graph(v, f, dtype=F64)
    assert g.connection == "intrinsic"
    assert_exact_gauss_bonnet(g)


@pytest.mark.parametrize("source,name,repair", [
    ("pymeshlab", "bunny.obj", False), ("brainspace", "conte69_32k_lh.gii", False),
    ("brainspace", "conte69_32k_rh.gii", False), ("brainspace", "conte69_32k_lh_sphere.gii", False),
    ("pymeshlab", "airplane.obj", False), ("pymeshlab", "bone.ply", True),
    ("pyvista", "ant.ply", False), ("pyvista", "nut.ply", False), ("pyvista", "sphere.ply", False),
])
def test_gauss_bonnet_is_exact_on_every_closed_manifold_real_mesh(source, name, repair):
    assert_exact_gauss_bonnet(load_mesh(require_data(source, name), repair=repair, dtype=F64))


def test_the_normal_connection_misses_gauss_bonnet_where_faces_fold():
    """The tetrahedron with a corner at the origin: its Gauss image folds (the vertex normals of
    the three right-angled corners point away from the faces), so the normal connection's face
    holonomies add up to 0 instead of 4 pi; face_folds names the cause, and the intrinsic connection
    of the same mesh is exact."""
    v, f = tetrahedron("corner")
    normal = mesh_graph(v, f, dtype=F64, connection="normal")
    assert abs(gauss_bonnet(normal).faces) < 1e-12
    assert int((face_folds(normal) < 0).sum()) >= 1
    assert_exact_gauss_bonnet(mesh_graph(v, f, dtype=F64))


def test_opposite_normals_are_refused_by_the_normal_connection_only():
    v, f = opposite_normal_tetrahedron()
    g = mesh_graph(v, f, dtype=F64)
    assert torch.allclose(g.frame[0, 2], -g.frame[1, 2], atol=1e-9)
    assert_exact_gauss_bonnet(g)
    with pytest.raises(ValueError, match=r"nodes [01] and [01] \(edge [01] -> [01]\).*connection='intrinsic'"):
        mesh_graph(v, f, dtype=F64, connection="normal")
    flipped = f.copy()
    flipped[0] = flipped[0, ::-1]
    for connection in ("intrinsic", "normal"):
        with pytest.raises(ValueError, match="inconsistently oriented"):
            mesh_graph(v, flipped, connection=connection)


# ---------------------------------------------------------------- boundaries
@pytest.mark.parametrize("name", ["cap", "holed bunny"])
def test_gauss_bonnet_with_boundary(name):
    v, f = cap() if name == "cap" else holed_bunny()
    g = mesh_graph(v, f, dtype=F64)
    assert g.face.shape[1] < 3 * g.num_edges // 4  # there is a boundary
    assert_exact_gauss_bonnet(g)
    # the half-turn rescaling puts the boundary's turning into the faces: the boundary is geodesic
    assert boundary_turning(g).abs().max() < 1e-10
    # the normal connection needs the boundary's geodesic curvature, and then holds too
    normal = mesh_graph(v, f, dtype=F64, connection="normal")
    gb = gauss_bonnet(normal)
    assert abs(gb.boundary) > 0.1 and abs(gb.defect) < 1e-8


# ---------------------------------------------------------------- isometry invariance
def test_rigid_motions_leave_logmaps_and_transports_unchanged():
    v, f = genus2_surface()
    rot = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(3), dtype=F64))[0]
    g = mesh_graph(v, f, dtype=F64)
    moved = mesh_graph(torch.as_tensor(v) @ rot.T + torch.tensor([3.0, -1.0, 2.0], dtype=F64), f, dtype=F64)
    assert torch.allclose(moved.edge_logmap, g.edge_logmap, rtol=0, atol=1e-12)
    assert wrap_angle(moved.edge_transport - g.edge_transport).abs().max() < 1e-12


def test_bending_a_flat_strip_changes_nothing_intrinsic():
    """Folding a flat strip by 70 degrees along a line of edges is an isometry: the intrinsic log
    maps and transports do not move, while the normal connection's do."""
    x, y = np.meshgrid(np.linspace(-1, 1, 9), np.linspace(0, 1, 5))
    flat = np.stack([x.ravel(), y.ravel(), np.zeros(x.size)], 1)
    from scipy.spatial import Delaunay

    f = Delaunay(flat[:, :2]).simplices
    bent = flat.copy()
    right = flat[:, 0] > 0
    a = math.radians(70)
    bent[right, 0], bent[right, 2] = flat[right, 0] * math.cos(a), flat[right, 0] * math.sin(a)
    assert (torch.as_tensor(np.sort(trimesh.Trimesh(bent, f).edges_unique_length)) -
            torch.as_tensor(np.sort(trimesh.Trimesh(flat, f).edges_unique_length))).abs().max() < 1e-12
    g, h = (mesh_graph(p, f, dtype=F64) for p in (flat, bent))
    assert torch.allclose(g.edge_logmap, h.edge_logmap, rtol=0, atol=1e-12)
    assert wrap_angle(g.edge_transport - h.edge_transport).abs().max() < 1e-12
    gn, hn = (mesh_graph(p, f, dtype=F64, connection="normal") for p in (flat, bent))
    assert wrap_angle(gn.edge_transport - hn.edge_transport).abs().max() > 0.05


# ---------------------------------------------------------------- geometry-central
@pytest.mark.parametrize("name", ["ellipsoid", "cap", "genus2"])
def test_agrees_with_geometry_central_to_rounding(name):
    """potpourri3d's connection Laplacian holds r_ji = -L[i, j] / w_ij = e^{i rho_ji}, the same
    construction in geometry-central's gauge. Fixing the gauge offsets p along a spanning tree
    (a_ji - p_i + p_j = rho_ji there), every other edge must agree too: the two connections are
    gauge-equivalent, i.e. they have the same holonomy around every loop."""
    pp3d = pytest.importorskip("potpourri3d")
    import scipy.sparse as sp
    from scipy.sparse.csgraph import breadth_first_order

    if name == "ellipsoid":
        v, f = icosphere(2)
        v = v * np.array([1.0, 0.7, 0.5])
    else:
        v, f = cap() if name == "cap" else genus2_surface()
    g = mesh_graph(v, f, dtype=F64)
    lap = pp3d.MeshVectorHeatSolver(v, f, use_intrinsic_delaunay=False).get_connection_laplacian().tocsr()
    j, i = g.edge_index.numpy()
    r = -np.asarray(lap[i, j]).ravel() / g.edge_weight.numpy()
    assert np.abs(np.abs(r) - 1).max() < 1e-10
    rho, a = np.angle(r), g.edge_transport.numpy()
    edge = sp.csr_matrix((np.arange(len(i)) + 1, (i, j)), shape=(len(v),) * 2)
    order, parent = breadth_first_order(edge, 0, directed=False)
    p = np.zeros(len(v))
    for x in order[1:]:
        e = edge[x, parent[x]] - 1
        p[x] = p[parent[x]] + a[e] - rho[e]
    assert wrap_angle(torch.as_tensor(a - p[i] + p[j] - rho)).abs().max() < 1e-10


# ---------------------------------------------------------------- non-manifold input
def test_a_pinched_vertex_falls_back_and_is_named(caplog):
    """Two octahedra touching at a vertex: its faces form two fans of four (a cycle of length 2^k
    must not pass for a closed fan), which no single angle layout holds; the vertex takes the
    embedding's projected angles, and the log names it."""
    v, f = octahedron()
    m = trimesh.Trimesh(np.concatenate([v, v * 0.8 + [1.8, 0, 0]]), np.concatenate([f, f + 6]), process=False)
    m.merge_vertices()
    assert len(m.vertices) == 11
    pinch = int(np.flatnonzero(np.abs(m.vertices - [1, 0, 0]).max(1) < 1e-9)[0])
    with caplog.at_level(logging.WARNING, logger="meshgdl"):
        g = mesh_graph(np.array(m.vertices), np.array(m.faces), dtype=F64)
    assert f"1 vertices have faces that do not form one fan (first: vertex {pinch})" in caplog.text
    assert torch.isfinite(g.edge_transport).all() and torch.isfinite(face_holonomy(g)).all()
    # faces away from the pinch keep the exact intrinsic holonomy
    away = (g.face != pinch).all(0)
    assert wrap_angle(transports_around_faces(g) - corner_defects(g.pos, g.face.t()))[away].abs().max() < 1e-10


def test_the_connection_is_kept_in_saved_graphs_and_in_the_cache_key(tmp_path):
    v, f = icosphere(1)
    g = mesh_graph(v, f, dtype=F64)
    n = mesh_graph(v, f, dtype=F64, connection="normal")
    assert n.connection == "normal" and not torch.allclose(g.edge_transport, n.edge_transport)
    g.save(tmp_path / "g.pt")
    from meshgdl import FramedGraph

    assert FramedGraph.load(tmp_path / "g.pt").connection == "intrinsic"
    with pytest.raises(ValueError, match="connection must be one of"):
        mesh_graph(v, f, connection="levi-civita")


def test_a_batch_of_both_connections_lifts_each_graph_by_its_own():
    from torch_geometric.data import Batch

    v, f = tetrahedron("corner")
    graphs = [mesh_graph(v, f, dtype=F64), mesh_graph(v, f, dtype=F64, connection="normal"),
              mesh_graph(*octahedron(), dtype=F64)]
    batch = Batch.from_data_list(graphs)
    assert torch.allclose(face_holonomy(batch), torch.cat([face_holonomy(g) for g in graphs]), rtol=0, atol=1e-12)
