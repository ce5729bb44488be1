import math

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from meshgdl import gauge_transform
from meshgdl.geometry import grid_graph, mesh_graph, point_cloud_graph, read_mesh
from meshgdl.graph import rotate_frames, wrap_angle
from tests.conftest import require_data


def fibonacci_sphere(n: int) -> np.ndarray:
    t = np.arange(n) + 0.5
    z = 1 - 2 * t / n
    r = np.sqrt(1 - z * z)
    phi = t * math.pi * (3 - math.sqrt(5))
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], -1)


def random_rotation(seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)))
    q = q * torch.sign(torch.diagonal(r))
    return q if torch.det(q) > 0 else -q


def bumpy_sphere(n: int, seed: int = 0) -> np.ndarray:
    """Random points on a star-shaped closed surface: no symmetry, no ties between distances."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x * (1 + 0.1 * np.sin(3 * x[:, :1]) * np.cos(2 * x[:, 1:2]))


def test_knn_edges_match_brute_force(dtype):
    x = bumpy_sphere(200)
    g = point_cloud_graph(x, 6, dtype=dtype)
    assert g.pos.dtype == g.frame.dtype == g.edge_logmap.dtype == dtype
    j, i = g.edge_index
    assert torch.equal(i, torch.arange(200).repeat_interleave(6))
    pos = torch.from_numpy(x)
    d = (pos[:, None] - pos[None]).norm(dim=-1)
    d.fill_diagonal_(math.inf)
    # sorted by target, then by the source's distance, nearest first
    assert torch.equal(j.view(200, 6), d.topk(6, largest=False).indices)
    length = g.edge_logmap.double().norm(dim=-1)
    torch.testing.assert_close(length, d[i, j], rtol=1e-6 if dtype == torch.float32 else 1e-12, atol=0)
    assert "edge_weight" not in g and "node_area" not in g


def test_sphere_normals_are_radial_and_outward():
    x = fibonacci_sphere(1500)
    g = point_cloud_graph(x, 10, dtype=torch.float64)
    cosine = (g.frame[:, 2] * torch.from_numpy(x)).sum(-1)
    assert float(cosine.min()) > 0.999


def test_torus_normals_are_consistent():
    # the seed (farthest from the centroid) lies on the outer equator: every normal points outwards
    rng = np.random.default_rng(1)
    u, v = rng.uniform(0, 2 * math.pi, (2, 3000))
    big, small = 2.0, 0.7
    ring = np.stack([np.cos(u), np.sin(u), np.zeros_like(u)], -1)
    normal = np.cos(v)[:, None] * ring + np.sin(v)[:, None] * np.array([0, 0, 1.0])
    x = big * ring + small * normal
    g = point_cloud_graph(x, 10, dtype=torch.float64)
    assert float((g.frame[:, 2] * torch.from_numpy(normal)).sum(-1).min()) > 0.95


def test_every_component_points_away_from_its_centroid():
    x = fibonacci_sphere(600)
    clouds = np.concatenate([x, 0.5 * x + np.array([5.0, 0, 0])])
    g = point_cloud_graph(clouds, 8, dtype=torch.float64)
    assert float((g.frame[:600, 2] * torch.from_numpy(x)).sum(-1).min()) > 0.99
    assert float((g.frame[600:, 2] * torch.from_numpy(x)).sum(-1).min()) > 0.99


def _exact_sphere_edges(graph):
    """Sphere log map and great-circle Levi-Civita transport in the graph's frames, from scratch."""
    x = graph.pos / graph.pos.norm(dim=-1, keepdim=True)
    j, i = graph.edge_index
    xi, xj = x[i], x[j]
    cos = (xi * xj).sum(-1).clamp(-1, 1)
    toward = xj - cos[:, None] * xi
    direction = toward / toward.norm(dim=-1, keepdim=True)
    e1i, e2i = graph.frame[i, 0], graph.frame[i, 1]
    log = torch.acos(cos)[:, None] * torch.stack([(direction * e1i).sum(-1), (direction * e2i).sum(-1)], -1)
    # Rodrigues: turn e1_j by the angle between the normals about n_j x n_i
    axis = torch.linalg.cross(xj, xi)
    axis = axis / axis.norm(dim=-1, keepdim=True)
    angle = torch.acos(cos)[:, None]
    v = graph.frame[j, 0]
    moved = (v * torch.cos(angle) + torch.linalg.cross(axis, v) * torch.sin(angle)
             + axis * (axis * v).sum(-1, keepdim=True) * (1 - torch.cos(angle)))
    transport = torch.atan2((moved * e2i).sum(-1), (moved * e1i).sum(-1))
    return log, transport


def test_log_map_and_transport_converge_to_the_sphere():
    errors = []
    for n in (300, 1200, 4800):
        g = point_cloud_graph(fibonacci_sphere(n), 8, dtype=torch.float64)
        log, transport = _exact_sphere_edges(g)
        log_err = float(((g.edge_logmap - log).norm(dim=-1) / log.norm(dim=-1)).max())
        transport_err = float(wrap_angle(g.edge_transport - transport).abs().max())
        errors.append((log_err, transport_err))
    (l0, t0), (l1, t1), (l2, t2) = errors
    # each refinement halves the spacing h; the errors shrink like h^2 (measured: 1.1e-2, 2.6e-3, 6.6e-4)
    assert l1 < 0.35 * l0 and l2 < 0.35 * l1
    assert t1 < 0.35 * t0 and t2 < 0.35 * t1
    assert l2 < 1e-3 and t2 < 1.5e-3


def test_reference_turned_frames_equal_a_gauge_transformation():
    x = bumpy_sphere(400)
    g = point_cloud_graph(x, 8, dtype=torch.float64)
    angles = torch.rand(400, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * 2 * math.pi
    turned = rotate_frames(g.frame, angles)
    h = point_cloud_graph(x, 8, reference=turned[:, 0], dtype=torch.float64)
    want = gauge_transform(g, angles)
    torch.testing.assert_close(h.frame, want.frame, atol=1e-10, rtol=0)
    torch.testing.assert_close(h.edge_logmap, want.edge_logmap, atol=1e-10, rtol=0)
    assert float(wrap_angle(h.edge_transport - want.edge_transport).abs().max()) < 1e-10


@pytest.mark.parametrize("cloud", ["bumpy", "plane"])
def test_global_rotation_moves_only_the_embedding(cloud):
    rng = np.random.default_rng(4)
    if cloud == "bumpy":
        x = bumpy_sphere(500)
    else:  # flat: the seed's normal is perpendicular to its offset and the fallback rule orients it
        x = np.concatenate([rng.uniform(-1, 1, (500, 2)), np.zeros((500, 1))], 1) @ random_rotation(7).numpy().T
    q = random_rotation(5)
    g = point_cloud_graph(x, 8, dtype=torch.float64)
    h = point_cloud_graph(torch.from_numpy(x) @ q.T, 8, dtype=torch.float64)
    assert torch.equal(g.edge_index, h.edge_index)
    torch.testing.assert_close(h.frame, g.frame @ q.T, atol=1e-10, rtol=0)
    torch.testing.assert_close(h.edge_logmap, g.edge_logmap, atol=1e-10, rtol=0)
    assert float(wrap_angle(h.edge_transport - g.edge_transport).abs().max()) < 1e-10


def test_given_normals_are_used_as_they_are():
    x = fibonacci_sphere(300)
    g = point_cloud_graph(x, 6, normals=-3 * x, dtype=torch.float64)
    torch.testing.assert_close(g.frame[:, 2], -torch.from_numpy(x), atol=1e-12, rtol=0)
    # exact normals on the sphere: the transport is Levi-Civita along great circles up to rounding
    _, transport = _exact_sphere_edges(g)
    assert float(wrap_angle(g.edge_transport - transport).abs().max()) < 1e-10


def test_bunny_vertex_normals_agree_with_the_mesh():
    vertices, faces = read_mesh(require_data("pymeshlab", "bunny.obj"))
    mesh_normal = mesh_graph(vertices, faces, dtype=torch.float64).frame[:, 2]
    g = point_cloud_graph(vertices, 12, dtype=torch.float64)
    agree = ((g.frame[:, 2] * mesh_normal).sum(-1) > 0).double().mean()
    assert float(agree) > 0.99


def test_cache_returns_the_same_graph():
    x = bumpy_sphere(100)
    a = point_cloud_graph(x, 5, dtype=torch.float64)
    b = point_cloud_graph(x, 5, dtype=torch.float64)
    c = point_cloud_graph(x, 5, dtype=torch.float64, cache=False)
    for key in ("frame", "edge_index", "edge_logmap", "edge_transport"):
        assert torch.equal(a[key], b[key]) and torch.equal(a[key], c[key])
    assert point_cloud_graph(x, 4).num_edges == 400  # k is part of the key


def test_batches_point_clouds_of_different_sizes_with_a_grid():
    a = point_cloud_graph(bumpy_sphere(50), 4, dtype=torch.float64)
    b = point_cloud_graph(bumpy_sphere(80, seed=1), 6, dtype=torch.float64)
    c = grid_graph(3, 3, dtype=torch.float64)
    batch = Batch.from_data_list([a, b, c])
    assert batch.num_nodes == 139 and batch.num_edges == 200 + 480 + c.num_edges
    assert torch.equal(batch.edge_index[:, 200:680], b.edge_index + 50)
    assert torch.equal(batch.edge_index[:, 680:], c.edge_index + 130)
    assert torch.equal(batch.frame[50:130], b.frame)
    assert torch.equal(batch.batch, torch.tensor([0] * 50 + [1] * 80 + [2] * 9))


def _bad(kind):
    x = bumpy_sphere(30)
    if kind == "nan":
        x[7, 1] = np.nan
    elif kind == "inf":
        x[3, 0] = np.inf
    elif kind == "duplicate":
        x[12] = x[4]
    return x


@pytest.mark.parametrize("args, kwargs, error, message", [
    ((_bad("nan"),), {}, ValueError, "NaN or infinite coordinates \\(first: point 7\\)"),
    ((_bad("inf"),), {}, ValueError, "NaN or infinite coordinates \\(first: point 3\\)"),
    ((_bad("duplicate"),), dict(k=4), ValueError, "2 points coincide with another point \\(e.g. point 4 = point 12\\)"),
    ((bumpy_sphere(10),), dict(k=10), ValueError, "needs at least k \\+ 1 = 11 points, got 10"),
    ((bumpy_sphere(10)[:, :2],), dict(k=3), ValueError, "points must have shape \\[N, 3\\], got \\[10, 2\\]"),
    ((bumpy_sphere(10),), dict(k=0), ValueError, "k must be at least 1"),
    ((bumpy_sphere(10),), dict(k=2.0), TypeError, "k must be an int"),
    ((bumpy_sphere(10),), dict(k=1), ValueError, "estimating normals needs k >= 2"),
    ((bumpy_sphere(10),), dict(k=3, normals=np.ones((9, 3))), ValueError, "normals must have shape \\[10, 3\\]"),
    ((bumpy_sphere(10),), dict(k=3, normals=np.zeros((10, 3))), ValueError, "normals must be non-zero"),
    ((bumpy_sphere(10),), dict(k=3, reference=np.ones(10)), ValueError, "reference must have shape \\[10, 3\\]"),
    ((np.arange(30.0).reshape(10, 3),), dict(k=3), ValueError, "neighbourhoods of 10 points are collinear"),
    (("points",), {}, TypeError, "points must be an array of numbers"),
])
def test_bad_input(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        point_cloud_graph(*args, **kwargs, cache=False)


def test_opposite_given_normals_are_explained():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.uniform(0, 1, (40, 2)), np.zeros((40, 1))], 1)
    normals = np.tile([0.0, 0.0, 1.0], (40, 1))
    normals[0] *= -1
    with pytest.raises(ValueError, match="opposite sides of a thin sheet or have opposite given normals"):
        point_cloud_graph(x, 6, normals=normals, cache=False)


def test_neighbour_on_the_normal_line_is_explained():
    # point 1 lies on the given normal line of point 0: the log map of edge 1 -> 0 has no direction
    x = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, -1, 0], [-1.5, 0, 0]])
    normals = np.tile([0.0, 0.0, 1.0], (5, 1))
    normals[0] = [1.0, 0, 0]
    with pytest.raises(ValueError, match="edge 1 -> 0 is parallel to the normal or has zero length"):
        point_cloud_graph(x, 2, normals=normals, cache=False)


def test_orientation_matches_a_sequential_walk_of_the_tree():
    """Pointer jumping against the obvious loop: visit the tree from the seed, agree with the parent."""
    from collections import deque

    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree
    from scipy.spatial import cKDTree

    from meshgdl.geometry.points import _orientation

    x = bumpy_sphere(300, seed=2)
    x = np.concatenate([x, x + np.array([4.0, 0, 0])])  # two components
    nbr = cKDTree(x).query(x, 9)[1][:, 1:]
    # rough outward normals with random signs: the walk has to flip about half of them
    outward = x - np.where(np.arange(600) < 300, 0.0, 4.0)[:, None] * [1, 0, 0]
    normal = outward + 0.3 * np.random.default_rng(3).normal(size=(600, 3))
    normal *= np.where(np.random.default_rng(4).random(600) < 0.5, -1, 1)[:, None]
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    sign = _orientation(x, normal, nbr)

    n = len(x)
    weight = {}
    for i in range(n):
        for j in nbr[i]:
            a, b = min(i, j), max(i, j)
            weight[a, b] = 2.0 - abs(normal[a] @ normal[b])
    keys = sorted(weight)
    graph = coo_matrix(([weight[e] for e in keys], ([e[0] for e in keys], [e[1] for e in keys])), shape=(n, n))
    tree = minimum_spanning_tree(graph.tocsr()).tocoo()
    adjacent = [[] for _ in range(n)]
    for a, b in zip(tree.row, tree.col):
        adjacent[a].append(b)
        adjacent[b].append(a)
    want = np.zeros(n, dtype=int)
    for part in (np.arange(300), np.arange(300, 600)):
        centre = x[part].mean(0)
        seed = part[np.argmax(np.linalg.norm(x[part] - centre, axis=1))]
        want[seed] = 1 if normal[seed] @ (x[seed] - centre) > 0 else -1
        queue = deque([seed])
        while queue:
            p = queue.popleft()
            for c in adjacent[p]:
                if want[c] == 0:
                    want[c] = want[p] * (1 if normal[c] @ normal[p] >= 0 else -1)
                    queue.append(c)
    assert np.array_equal(sign, want)
    assert (sign == -1).sum() > 200 and (sign == 1).sum() > 200
