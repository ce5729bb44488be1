import math

import pytest
import torch
from torch_geometric.data import Batch

from meshgdl import FieldType, gauge_transform, permute_nodes
from meshgdl.geometry import grid_graph, grid_rotation, loop_holonomy
from meshgdl.graph import rotation_matrix


def test_layout_and_log_maps(dtype):
    g = grid_graph(3, 4, spacing=0.5, dtype=dtype)
    assert g.num_nodes == 12 and g.pos.dtype == dtype
    # node n = r W + c sits at (c, r, 0) * spacing, so image.reshape(C, -1).T are its features
    assert torch.equal(g.pos[1 * 4 + 2], torch.tensor([1.0, 0.5, 0.0], dtype=dtype))
    assert torch.equal(g.frame, torch.eye(3, dtype=dtype).expand(12, 3, 3))
    j, i = g.edge_index
    assert torch.equal(g.edge_logmap, (g.pos[j] - g.pos[i])[:, :2])
    assert torch.all(g.edge_transport == 0) and torch.all(g.node_area == 0.25)
    # 2 (H (W - 1) + W (H - 1)) directed edges, sorted by target, counter-clockwise from +x
    assert g.num_edges == 2 * (3 * 3 + 4 * 2)
    assert torch.all(i[1:] >= i[:-1])
    first = g.edge_index[:, i == 5]
    assert first[0].tolist() == [6, 9, 4, 1]


@pytest.mark.parametrize("connectivity", [4, 8])
def test_periodic_neighbours_are_distinct_and_short(connectivity):
    g = grid_graph(3, 5, connectivity=connectivity, periodic=True, spacing=2.0, dtype=torch.float64)
    j, i = g.edge_index
    assert torch.equal(torch.bincount(i), torch.full((15,), connectivity))
    assert torch.unique(i * 15 + j).numel() == g.num_edges
    # across the seam the log map is the short displacement, one or sqrt(2) spacings long
    length = g.edge_logmap.norm(dim=-1)
    assert set(torch.round(length**2).tolist()) <= {4.0, 8.0}
    seam = (g.pos[j] - g.pos[i])[:, :2].norm(dim=-1) > 3
    assert bool(seam.any())
    # the reverse of every edge carries the opposite log map
    rev = g.edge_id(i, j)
    assert torch.equal(g.edge_logmap[rev], -g.edge_logmap)


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("periodic", [False, True])
def test_flat_holonomy_on_every_square(connectivity, periodic):
    h, w = 4, 5
    g = grid_graph(h, w, connectivity=connectivity, periodic=periodic, dtype=torch.float64)
    rows, cols = (h, w) if periodic else (h - 1, w - 1)
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    r, c = r.reshape(-1), c.reshape(-1)
    node = lambda rr, cc: (rr % h) * w + cc % w  # noqa: E731
    # counter-clockwise seen from +z: (c, r) -> (c + 1, r) -> (c + 1, r + 1) -> (c, r + 1)
    squares = torch.stack([node(r, c), node(r, c + 1), node(r + 1, c + 1), node(r + 1, c)], 1)
    assert torch.equal(loop_holonomy(g, squares), torch.zeros(len(squares), dtype=torch.float64))
    if connectivity == 8:
        triangles = torch.stack([node(r, c), node(r, c + 1), node(r + 1, c + 1)], 1)
        assert torch.equal(loop_holonomy(g, triangles), torch.zeros(len(r), dtype=torch.float64))


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("periodic", [False, True])
def test_rotation_is_a_permutation_and_gauge_transformation(k, connectivity, periodic):
    h = w = 5
    g = grid_graph(h, w, connectivity=connectivity, periodic=periodic, dtype=torch.float64)
    perm, angles = grid_rotation(h, w, k)
    img = torch.randn(2, h, w, dtype=torch.float64)
    assert torch.equal(torch.rot90(img, k, dims=(-2, -1)).reshape(2, -1), img.reshape(2, -1)[:, perm])
    assert torch.allclose(angles, torch.full_like(angles, math.remainder(k * math.pi / 2, 2 * math.pi)))

    moved = gauge_transform(permute_nodes(g, perm), angles)
    assert moved.num_edges == g.num_edges
    eid = moved.edge_id(g.edge_index[0], g.edge_index[1])
    torch.testing.assert_close(moved.edge_logmap[eid], g.edge_logmap, atol=1e-12, rtol=0)
    torch.testing.assert_close(moved.edge_transport[eid], g.edge_transport, atol=1e-12, rtol=0)
    # the embedding itself turned by +theta about the centre
    rot = torch.eye(3, dtype=torch.float64)
    rot[:2, :2] = rotation_matrix(angles[0])
    centre = g.pos.mean(0)
    torch.testing.assert_close(moved.pos, (g.pos - centre) @ rot.T + centre, atol=1e-12, rtol=0)
    torch.testing.assert_close(moved.frame, g.frame @ rot.T, atol=1e-12, rtol=0)


def _gradient(graph, f):
    """Finite-difference gradient from the graph alone: sum_j (f_j - f_i) log_ij / |log_ij|^2."""
    j, i = graph.edge_index
    log = graph.edge_logmap
    msg = (f[j] - f[i])[:, None] * log / (log * log).sum(-1, keepdim=True)
    return torch.zeros(graph.num_nodes, 2, dtype=f.dtype).index_add_(0, i, msg)


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("periodic", [False, True])
def test_vector_and_frequency_m_fields_rotate_with_the_image(k, periodic):
    h = w = 6
    g = grid_graph(h, w, connectivity=8, periodic=periodic, dtype=torch.float64)
    perm, angles = grid_rotation(h, w, k)
    img = torch.randn(h, w, dtype=torch.float64)
    grad = _gradient(g, img.reshape(-1))
    grad_rot = _gradient(g, torch.rot90(img, k, dims=(-2, -1)).reshape(-1))
    # a vector field (frequency 1): f'_n = R(-theta) f_perm[n]
    torch.testing.assert_close(grad_rot, FieldType.vectors(1).transform(grad[perm], angles), atol=1e-12, rtol=0)
    torch.testing.assert_close(grad_rot, (rotation_matrix(-angles) @ grad[perm, :, None])[..., 0], atol=1e-12, rtol=0)
    # frequency m: (g_x + i g_y)^m turns by -m theta
    for m in (2, 3):
        z = torch.view_as_complex(grad.contiguous()) ** m
        z_rot = torch.view_as_complex(grad_rot.contiguous()) ** m
        want = FieldType([0] * m + [1]).transform(torch.view_as_real(z)[perm], angles)
        torch.testing.assert_close(torch.view_as_real(z_rot), want, atol=1e-10, rtol=0)


def test_non_square_grids_rotate_by_half_turns_only():
    g = grid_graph(3, 4, periodic=True, dtype=torch.float64)
    perm, angles = grid_rotation(3, 4, 2)
    moved = gauge_transform(permute_nodes(g, perm), angles)
    eid = moved.edge_id(g.edge_index[0], g.edge_index[1])
    torch.testing.assert_close(moved.edge_logmap[eid], g.edge_logmap, atol=1e-12, rtol=0)
    img = torch.randn(3, 4)
    assert torch.equal(torch.rot90(img, 2).reshape(-1), img.reshape(-1)[perm])
    with pytest.raises(ValueError, match="not square: only rotations by 180 degrees"):
        grid_rotation(3, 4, 1)


def test_batches_grids_of_different_sizes():
    a = grid_graph(3, 3, dtype=torch.float64)
    b = grid_graph(4, 5, connectivity=8, periodic=True, dtype=torch.float64)
    batch = Batch.from_data_list([a, b])
    assert batch.num_nodes == 29 and batch.num_edges == a.num_edges + b.num_edges
    assert torch.equal(batch.edge_index[:, a.num_edges:], b.edge_index + 9)
    assert torch.equal(batch.edge_logmap, torch.cat([a.edge_logmap, b.edge_logmap]))
    assert batch.grid_shape == [(3, 3), (4, 5)]


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(height=0, width=3), ValueError, "height must be at least 1"),
    (dict(height=3, width=-1), ValueError, "width must be at least 1"),
    (dict(height=2.5, width=3), TypeError, "height must be an int"),
    (dict(height=3, width=3, connectivity=6), ValueError, "connectivity must be 4 or 8"),
    (dict(height=2, width=5, periodic=True), ValueError, "at least 3 rows and 3 columns"),
    (dict(height=3, width=3, spacing=0.0), ValueError, "spacing must be a positive number"),
])
def test_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        grid_graph(**kwargs)


def test_bad_rotation_input():
    with pytest.raises(TypeError, match="k \\(the number of quarter turns\\) must be an int"):
        grid_rotation(3, 3, 1.5)
    with pytest.raises(ValueError, match="width must be at least 1"):
        grid_rotation(3, 0)
