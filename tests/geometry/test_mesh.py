import logging
import math

import numpy as np
import pytest
import torch
import trimesh

import meshgdl.geometry.mesh as mesh_module
from meshgdl import FramedGraph, gauge_transform
from meshgdl.geometry import face_holonomy, load_mesh, mesh_graph, read_mesh
from meshgdl.graph import rotate_frames, wrap_angle
from tests.conftest import require_data

F64 = torch.float64


def icosphere(sub):
    m = trimesh.creation.icosphere(subdivisions=sub)
    return np.array(m.vertices), np.array(m.faces)


def solid_angle(a, b, c):
    """Signed area of the spherical triangle (a, b, c) of unit vectors (Van Oosterom-Strackee)."""
    num = (a * torch.linalg.cross(b, c)).sum(-1)
    den = 1 + (a * b).sum(-1) + (b * c).sum(-1) + (c * a).sum(-1)
    return 2 * torch.atan2(num, den)


def genus2_surface():
    """The boundary of a voxel slab with two square holes (genus 2), smoothed."""
    solid = np.ones((5, 3, 1), bool)
    solid[1, 1] = solid[3, 1] = False
    verts, quads = {}, []

    def vid(p):
        return verts.setdefault(p, len(verts))

    for x, y, z in zip(*np.nonzero(solid)):
        for axis in range(3):
            for side in (0, 1):
                nb = [x, y, z]
                nb[axis] += 1 if side else -1
                inside = all(0 <= nb[k] < solid.shape[k] for k in range(3)) and solid[tuple(nb)]
                if inside:
                    continue
                u, w = [(1, 2), (2, 0), (0, 1)][axis]
                corners = []
                for du, dv in [(0, 0), (1, 0), (1, 1), (0, 1)]:
                    p = [x, y, z]
                    p[axis] += side
                    p[u] += du
                    p[w] += dv
                    corners.append(vid(tuple(p)))
                quads.append(corners if side else corners[::-1])
    v = np.array(sorted(verts, key=verts.get), float)
    q = np.array(quads)
    f = np.concatenate([q[:, [0, 1, 2]], q[:, [0, 2, 3]]])
    mesh = trimesh.Trimesh(v, f, process=False).subdivide().subdivide()
    trimesh.smoothing.filter_taubin(mesh, iterations=20)
    return np.array(mesh.vertices), np.array(mesh.faces)


# ---------------------------------------------------------------- Gauss-Bonnet
@pytest.mark.parametrize("connection", ["intrinsic", "normal"])
@pytest.mark.parametrize("name", ["sphere", "torus", "genus2"])
def test_face_holonomies_sum_to_euler_characteristic(name, connection):
    if name == "sphere":
        v, f = icosphere(3)
    elif name == "torus":
        t = trimesh.creation.torus(1.0, 0.35, major_sections=48, minor_sections=24)
        v, f = np.array(t.vertices), np.array(t.faces)
    else:
        v, f = genus2_surface()
    g = mesh_graph(v, f, dtype=F64, connection=connection)
    chi = g.num_nodes - g.num_edges // 2 + g.face.shape[1]
    assert chi == {"sphere": 2, "torus": 0, "genus2": -2}[name]
    assert abs(float(face_holonomy(g).sum()) - 2 * math.pi * chi) < 1e-8


@pytest.mark.parametrize("connection", ["intrinsic", "normal"])
@pytest.mark.parametrize("source,name,repair", [
    ("pymeshlab", "bunny.obj", False), ("brainspace", "conte69_32k_lh.gii", False),
    ("pymeshlab", "airplane.obj", False),
])
def test_gauss_bonnet_on_real_closed_meshes(source, name, repair, connection):
    g = load_mesh(require_data(source, name), repair=repair, dtype=F64, connection=connection)
    chi = g.num_nodes - g.num_edges // 2 + g.face.shape[1]
    assert abs(float(face_holonomy(g).sum()) - 2 * math.pi * chi) < 1e-8


def test_face_holonomy_is_the_solid_angle_of_the_normals():
    """For the normal-rotation connection, a face's holonomy is the area of the spherical triangle
    spanned by its vertex normals (its Gauss image): exact on any mesh, coarse ones included, and
    face_holonomy returns it unwrapped."""
    for v, f in [icosphere(1), genus2_surface(), read_mesh(require_data("pyvista", "ant.ply"))]:
        g = mesh_graph(v, f, dtype=F64, connection="normal")
        n = g.frame[:, 2][g.face]  # [3, F, 3]
        expected = solid_angle(n[0], n[1], n[2])
        assert torch.allclose(face_holonomy(g), expected, rtol=0, atol=1e-10)


def test_flat_mesh_has_zero_holonomy():
    x, y = np.meshgrid(np.linspace(0, 1, 9), np.linspace(0, 2, 11))
    v = np.stack([x.ravel(), y.ravel(), np.zeros(x.size)], 1)
    v[:, :2] += np.random.default_rng(0).uniform(-0.02, 0.02, (len(v), 2))
    from scipy.spatial import Delaunay

    f = Delaunay(v[:, :2]).simplices
    g = mesh_graph(v, f, dtype=F64, connection="normal")
    assert face_holonomy(g).abs().max() < 1e-12
    # the intrinsic connection turns boundary fans into half-turns, which moves the boundary's
    # turning into the faces at the boundary: inner faces stay flat, and the total is 2 pi chi
    g = mesh_graph(v, f, dtype=F64)
    boundary = torch.zeros(g.num_nodes, dtype=torch.bool)
    boundary[torch.as_tensor(trimesh.Trimesh(v, f).outline().vertex_nodes).flatten()] = True
    inner = ~boundary[g.face].any(0)
    assert inner.sum() > 50 and face_holonomy(g)[inner].abs().max() < 1e-12
    assert abs(float(face_holonomy(g).sum()) - 2 * math.pi) < 1e-12


# ---------------------------------------------------------------- exact sphere
def exact_sphere_edges(g):
    """Log map and Levi-Civita transport of the unit sphere along each edge, computed from
    great-circle geometry (independently of meshgdl's Rodrigues formula)."""
    j, i = g.edge_index
    p, q = g.pos[i], g.pos[j]
    arc = torch.arccos((p * q).sum(-1).clamp(-1, 1))
    tangent_p = q - (p * q).sum(-1, keepdim=True) * p
    tangent_p = tangent_p / tangent_p.norm(dim=-1, keepdim=True)  # direction of travel at i, towards j
    log = arc[:, None] * torch.stack([(tangent_p * g.frame[i, k]).sum(-1) for k in (0, 1)], -1)
    # transport e1 of j to i: keep its component along the binormal, turn the travel direction
    tangent_q = p - (p * q).sum(-1, keepdim=True) * q
    tangent_q = tangent_q / tangent_q.norm(dim=-1, keepdim=True)  # direction of travel at j, towards i
    binormal = torch.linalg.cross(q, tangent_q)
    e1 = g.frame[j, 0]
    a, b = (e1 * tangent_q).sum(-1, keepdim=True), (e1 * binormal).sum(-1, keepdim=True)
    travel_at_i = -tangent_p
    moved = a * travel_at_i + b * binormal
    angle = torch.atan2((moved * g.frame[i, 1]).sum(-1), (moved * g.frame[i, 0]).sum(-1))
    return log, angle


def test_icosphere_matches_the_exact_sphere_and_converges():
    log_err, prev = [], None
    for sub in (1, 2, 3, 4):
        v, f = icosphere(sub)
        g = mesh_graph(v, f, dtype=F64, connection="normal")
        log, angle = exact_sphere_edges(g)
        # normals are exact on the sphere, so transport is exact Levi-Civita transport
        assert wrap_angle(g.edge_transport - angle).abs().max() < 1e-10
        # the log map's direction is exact; its length is the chord, not the arc
        cos = (g.edge_logmap * log).sum(-1) / (g.edge_logmap.norm(dim=-1) * log.norm(dim=-1))
        assert (1 - cos).abs().max() < 1e-12
        log_err.append(float(((g.edge_logmap - log).norm(dim=-1) / log.norm(dim=-1)).max()))
        # each face's holonomy is its spherical excess, which approaches its area
        hol = face_holonomy(g)
        ratio = float((hol / torch.tensor(trimesh.Trimesh(v, f).area_faces) - 1).abs().max())
        if prev is not None:
            assert ratio < prev / 3
        prev = ratio
    assert all(b < a / 3 for a, b in zip(log_err, log_err[1:]))


def test_normal_connection_approaches_geometry_centrals_intrinsic_connection():
    """potpourri3d's connection Laplacian gives r_ji = -L[i, j] / w_ij. With the same tangent
    bases, its transport and the normal connection's agree to O(h^2) on a smooth surface, and the
    cotangent weights agree exactly (|r_ji| = 1). (The intrinsic connection agrees to rounding:
    test_intrinsic.py.)"""
    pp3d = pytest.importorskip("potpourri3d")
    errors = []
    for sub in (2, 3, 4):
        v, f = icosphere(sub)
        v = v * np.array([1.0, 0.7, 0.5])  # an ellipsoid: curvature varies
        solver = pp3d.MeshVectorHeatSolver(v, f, use_intrinsic_delaunay=False)
        basis_x, _, _ = solver.get_tangent_frames()
        lap = solver.get_connection_laplacian().tocsr()
        g = mesh_graph(v, f, reference=torch.as_tensor(basis_x), dtype=F64, connection="normal")
        j, i = g.edge_index.numpy()
        r = -np.asarray(lap[i, j]).ravel() / g.edge_weight.numpy()
        assert np.abs(np.abs(r) - 1).max() < 1e-12
        errors.append(float(wrap_angle(torch.as_tensor(np.angle(r)) - g.edge_transport).abs().max()))
    assert errors[0] < 0.02 and errors[1] < errors[0] / 3 and errors[2] < errors[1] / 3


# ---------------------------------------------------------------- symmetries of the construction
@pytest.mark.parametrize("connection", ["intrinsic", "normal"])
def test_building_with_turned_frames_equals_the_gauge_transformation(connection):
    v, f = read_mesh(require_data("pyvista", "ant.ply"))
    g = mesh_graph(v, f, dtype=F64, connection=connection)
    p = torch.rand(g.num_nodes, generator=torch.Generator().manual_seed(0), dtype=F64) * 2 * math.pi
    turned = rotate_frames(g.frame, p)
    built = mesh_graph(v, f, reference=turned[:, 0], dtype=F64, connection=connection)
    expected = gauge_transform(g, p)
    assert torch.allclose(built.frame, expected.frame, atol=1e-10)
    assert torch.allclose(built.edge_logmap, expected.edge_logmap, atol=1e-10)
    assert wrap_angle(built.edge_transport - expected.edge_transport).abs().max() < 1e-10


@pytest.mark.parametrize("connection", ["intrinsic", "normal"])
def test_global_rotation_rotates_frames_and_keeps_edge_data(connection):
    v, f = genus2_surface()
    rot = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(1), dtype=F64))[0]
    rot = rot * torch.sign(torch.linalg.det(rot))
    g = mesh_graph(v, f, dtype=F64, connection=connection)
    r = mesh_graph(torch.as_tensor(v) @ rot.T, f, dtype=F64, connection=connection)
    assert torch.allclose(r.frame, g.frame @ rot.T, atol=1e-10)
    assert torch.allclose(r.edge_logmap, g.edge_logmap, atol=1e-10)
    assert wrap_angle(r.edge_transport - g.edge_transport).abs().max() < 1e-10
    assert torch.equal(r.edge_index, g.edge_index)


def test_edges_pair_with_their_reverse_and_transport_inverts():
    v, f = icosphere(2)
    g = mesh_graph(v, f, dtype=F64)
    rev = g.edge_reverse
    assert torch.equal(g.edge_index[:, rev], g.edge_index.flip(0))
    assert wrap_angle(g.edge_transport + g.edge_transport[rev]).abs().max() < 1e-12
    assert torch.allclose(g.edge_weight, g.edge_weight[rev])
    assert abs(float(g.node_area.sum()) - trimesh.Trimesh(v, f).area) < 1e-10


# ---------------------------------------------------------------- real meshes
@pytest.mark.parametrize("source,name,repair", [
    ("pymeshfix", "StanfordBunny.ply", False), ("pymeshlab", "bone.ply", True),
    ("pymeshlab", "face000.ply", True), ("pyvista", "nut.ply", False), ("pymeshlab", "cow.obj", True),
])
def test_real_meshes_with_boundaries_and_defects_build(source, name, repair):
    g = load_mesh(require_data(source, name), repair=repair, dtype=F64)
    g.validate()
    assert int(torch.bincount(g.edge_index[1], minlength=g.num_nodes).min()) >= 2
    assert torch.isfinite(face_holonomy(g)).all()


# ---------------------------------------------------------------- bad input
def test_bad_input_is_refused_with_a_clear_message():
    v, f = icosphere(1)
    bad = v.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite coordinates.*vertex 3"):
        mesh_graph(bad, f)
    with pytest.raises(ValueError, match="outside 0..41"):
        mesh_graph(v, np.concatenate([f, [[0, 1, 42]]]))
    with pytest.raises(ValueError, match="empty"):
        mesh_graph(np.zeros((0, 3)), np.zeros((0, 3), int))
    with pytest.raises(ValueError, match=r"shape \[F, 3\]"):
        mesh_graph(v, f[:, :2])
    with pytest.raises(ValueError, match="inconsistently oriented"):
        flipped = f.copy()
        flipped[0] = flipped[0, ::-1]
        mesh_graph(v, flipped)


def test_any_strided_or_read_only_array_is_accepted():
    v, f = icosphere(1)
    flipped = mesh_graph(v, f[:, ::-1], dtype=F64)  # the usual way to flip the winding
    assert torch.allclose(flipped.frame[:, 2], -mesh_graph(v, f, dtype=F64).frame[:, 2])
    assert torch.equal(flipped.face, mesh_graph(v, f[:, ::-1].copy(), dtype=F64).face)
    frozen = v.copy()
    frozen.setflags(write=False)
    tv = torch.as_tensor(v.T.copy()).t()  # a non-contiguous tensor
    for vertices in (frozen, tv, v[::-1][::-1]):
        g = mesh_graph(vertices, torch.as_tensor(f.T.copy()).t(), dtype=F64)
        assert torch.equal(g.pos, torch.as_tensor(v))


def test_dtype_may_be_named_and_must_be_floating():
    v, f = icosphere(1)
    for dtype in ("float64", "torch.float64", np.float64, np.dtype("float64"), torch.float64):
        assert mesh_graph(v, f, dtype=dtype).frame.dtype == F64
    assert mesh_graph(v, f, dtype="float32").edge_logmap.dtype == torch.float32
    for dtype in (torch.int64, "int64", np.int32, "cuda", "double precision"):
        with pytest.raises(ValueError, match="floating dtype.*float32"):
            mesh_graph(v, f, dtype=dtype)


def test_duplicate_and_isolated_vertices_need_repair_and_keep_a_vertex_map():
    v, f = icosphere(1)
    v2 = np.concatenate([v, v[:1], [[5.0, 5.0, 5.0]]])  # vertex 42 copies 0; 43 is isolated
    f2 = f.copy()
    f2[f2 == 0] = 42
    with pytest.raises(ValueError, match="repeat the coordinates.*repair=True"):
        mesh_graph(v2, f2)
    with pytest.raises(ValueError, match="belong to no face.*repair=True"):
        mesh_graph(np.concatenate([v, [[5.0, 5.0, 5.0]]]), f)
    g = mesh_graph(v2, f2, repair=True, dtype=F64)
    ref = mesh_graph(v, f, dtype=F64)
    assert g.num_nodes == 42 and g.vertex_map.tolist() == list(range(42)) + [0, -1]
    assert torch.allclose(g.frame, ref.frame) and torch.equal(g.edge_index, ref.edge_index)


def test_zero_area_faces_are_dropped_and_logged(caplog):
    v, f = icosphere(1)
    v2 = np.concatenate([v, [(v[0] + v[1]) / 2]])
    f2 = np.concatenate([f, [[0, 1, 42]]])  # collinear: zero area, and vertex 42 used only there
    with caplog.at_level(logging.WARNING, logger="meshgdl"), pytest.raises(ValueError, match="belong to no face"):
        mesh_graph(v2, f2)
    assert "zero-area" in caplog.text
    g = mesh_graph(v2, f2, repair=True)
    assert g.face.shape[1] == len(f)


def test_nonmanifold_edges_are_logged(caplog):
    v, f = icosphere(1)
    a, b = f[0, 0], f[0, 1]
    v2 = np.concatenate([v, [[3.0, 0.0, 0.0]]])
    fin = np.array([[a, b, 42], [b, a, 42]])  # a fin on edge a-b: three faces share it
    with caplog.at_level(logging.WARNING, logger="meshgdl"):
        with pytest.raises(ValueError):  # the fin's two faces cancel at vertex 42
            mesh_graph(v2, np.concatenate([f, fin]))
    assert "more than two faces" in caplog.text


# ---------------------------------------------------------------- caching and files
def test_second_build_comes_from_the_cache(monkeypatch):
    import meshgdl.cache as cache

    v, f = icosphere(2)
    calls = []
    real = mesh_module._build
    monkeypatch.setattr(mesh_module, "_build", lambda *a: calls.append(1) or real(*a))
    g1 = mesh_graph(v, f)
    g2 = mesh_graph(v, f)
    assert len(calls) == 1 and torch.equal(g1.edge_logmap, g2.edge_logmap)
    cache.clear_memory()
    g3 = mesh_graph(v, f)  # from disk
    assert len(calls) == 1 and torch.equal(g1.edge_transport, g3.edge_transport)
    v2 = v.copy()
    v2[0] *= 1.01
    mesh_graph(v2, f)
    assert len(calls) == 2
    g2.pos[0] = 100.0  # a user's change never reaches the cache
    assert float(mesh_graph(v, f).pos[0].abs().max()) < 2


def test_read_mesh_keeps_vertex_order_and_reports_missing_files(tmp_path):
    v, f = icosphere(1)
    rng = np.random.default_rng(0)
    v = v[rng.permutation(len(v))]
    path = tmp_path / "m.ply"
    trimesh.Trimesh(v, icosphere(1)[1], process=False).export(path)
    v2, _ = read_mesh(path)
    assert np.allclose(v, v2)
    with pytest.raises(FileNotFoundError, match="no mesh file"):
        read_mesh(tmp_path / "absent.obj")


@pytest.mark.parametrize("suffix", ["stl", "off", "obj"])
def test_every_file_format_reads_to_the_same_graph(tmp_path, suffix):
    v, f = icosphere(2)
    trimesh.Trimesh(v, f, process=False).export(tmp_path / f"s.{suffix}")
    g = load_mesh(tmp_path / f"s.{suffix}", dtype=F64)
    assert g.num_nodes == len(v) and g.face.shape[1] == len(f)
    assert abs(float(face_holonomy(g).sum()) - 4 * math.pi) < 1e-8


def test_a_trimesh_object_is_accepted():
    m = trimesh.creation.icosphere(subdivisions=1)
    g = mesh_graph(m, dtype=F64)
    assert torch.equal(g.edge_index, mesh_graph(np.array(m.vertices), np.array(m.faces)).edge_index)
    with pytest.raises(TypeError, match="needs faces"):
        mesh_graph(np.array(m.vertices))
