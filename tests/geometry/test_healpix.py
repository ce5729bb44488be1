import math

import healpy as hp
import numpy as np
import pytest
import torch

from meshgdl import gauge_transform, permute_nodes
from meshgdl.geometry import loop_holonomy, tangent_logmap, transport_angle
from meshgdl.geometry.healpix import healpix_graph, healpix_rotation
from meshgdl.geometry.healpix_geometry import MIRROR_SLOT, east_north_up, edge_geometry, ring_of, ring_start
from meshgdl.graph import wrap_angle


def _fan_loops(graph):
    """Triangles (i, n_s, n_s+1), quadrilaterals (i, n_s, n_s+1, n_s+2) and the ring of 7 or 8
    neighbours around every node, from healpy's compass order; with their signed areas."""
    nside, nest = graph.nside, graph.nest
    nb = hp.get_all_neighbours(nside, graph.pixel.numpy(), nest=nest).T
    tri, quad, rings = [], [], []
    for i, row in enumerate(nb):
        ring = [int(p) for p in row if p >= 0]
        m = len(ring)
        if m == 8:
            rings.append(ring)
        for s in range(m):
            tri.append([i, ring[s], ring[(s + 1) % m]])
            quad.append([i, ring[s], ring[(s + 1) % m], ring[(s + 2) % m]])
    return [torch.tensor(loops) for loops in (tri, quad, rings) if loops]


def _signed_area(pos, loops):
    """Signed area of the geodesic polygon ``loops`` (fan from its first vertex), positive when
    counter-clockwise seen from outside (Van Oosterom and Strackee)."""
    a = pos[loops[:, 0]]
    total = torch.zeros(len(loops), dtype=pos.dtype)
    for t in range(1, loops.shape[1] - 1):
        b, c = pos[loops[:, t]], pos[loops[:, t + 1]]
        det = (a * torch.linalg.cross(b, c)).sum(-1)
        den = 1 + (a * b).sum(-1) + (b * c).sum(-1) + (c * a).sum(-1)
        total = total + 2 * torch.atan2(det, den)
    return total


@pytest.mark.parametrize("nest", [True, False])
@pytest.mark.parametrize("nside", [1, 2, 4, 8, 16])
def test_neighbours_agree_with_healpy(nside, nest):
    graph = healpix_graph(nside, nest=nest)
    nb = hp.get_all_neighbours(nside, np.arange(12 * nside**2), nest=nest).T
    i = np.repeat(np.arange(len(nb)), 8).reshape(nb.shape)
    valid = nb >= 0
    assert np.array_equal(graph.edge_index[0].numpy(), nb[valid])
    assert np.array_equal(graph.edge_index[1].numpy(), i[valid])
    assert graph.num_edges == int(valid.sum())
    assert graph.nside == nside and graph.nest == nest


@pytest.mark.parametrize("nside", [2, 4, 8, 16])
def test_24_pixels_have_seven_neighbours(nside):
    # the three around each of the 8 vertices where three base faces meet; every other pixel has 8
    graph = healpix_graph(nside)
    degree = torch.bincount(graph.edge_index[1], minlength=graph.num_nodes)
    assert int((degree == 7).sum()) == 24 and int((degree == 8).sum()) == graph.num_nodes - 24
    assert torch.equal(degree, torch.bincount(graph.edge_index[0], minlength=graph.num_nodes))  # symmetric


def test_at_nside_1_every_pixel_has_six_neighbours():
    # the 12 base pixels: 4 across their edges and 2 across their corners (healpy agrees)
    degree = torch.bincount(healpix_graph(1).edge_index[1], minlength=12)
    assert torch.equal(degree, torch.full((12,), 6))


def test_frames_are_east_north_up(dtype):
    graph = healpix_graph(16, dtype=dtype)
    f = graph.frame.double()
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    assert torch.allclose(f @ f.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand_as(f), atol=tol)
    assert torch.allclose(torch.linalg.det(f), torch.ones(len(f), dtype=torch.float64), atol=tol)
    assert torch.allclose(f[:, 2], graph.pos.double(), atol=tol)  # up = outward normal
    assert f[:, 0, 2].abs().max() <= tol and bool((f[:, 1, 2] > 0).all())  # east is level, north climbs
    # east points along increasing longitude: e1 ~ d pos / d phi
    x, y = graph.pos[:, 0].double(), graph.pos[:, 1].double()
    assert torch.allclose(f[:, 0, 0] * -y + f[:, 0, 1] * x, torch.hypot(x, y), atol=tol)
    assert graph.pos.dtype == dtype and graph.edge_logmap.dtype == dtype


def test_frames_at_pixels_nearest_the_poles():
    for nside in (1024, 1 << 20, 1 << 29):
        pix = np.array([0, 1, 2, 3, 12 * nside**2 - 1, 12 * nside**2 - 4])
        xyz = np.stack(hp.pix2vec(nside, pix, nest=False), 1)
        f = east_north_up(xyz)
        assert np.allclose(f @ f.transpose(0, 2, 1), np.eye(3), atol=1e-14)
        assert np.allclose(np.linalg.det(f), 1, atol=1e-14)
        # the builder passes healpy's components and writes float32 frames in place
        out = np.empty((len(pix), 3, 3), np.float32)
        assert east_north_up(hp.pix2vec(nside, pix, nest=False), out=out) is out
        assert np.array_equal(out, f.astype(np.float32))


@pytest.mark.parametrize("nest", [True, False])
def test_edges_equal_the_generic_tangent_geometry(nest):
    graph = healpix_graph(16, nest=nest, dtype=torch.float64)
    j, i = graph.edge_index
    # exact great-circle distance, independent of the builder's formula
    chord = (graph.pos[j] - graph.pos[i]).norm(dim=-1)
    dist = 2 * torch.asin(chord / 2)
    assert torch.allclose(graph.edge_logmap.norm(dim=-1), dist, atol=1e-14, rtol=0)
    ref = tangent_logmap(graph.pos, graph.frame, graph.edge_index, length=dist)
    assert torch.allclose(graph.edge_logmap, ref, atol=1e-14, rtol=0)
    ref = transport_angle(graph.frame[j], graph.frame[i])
    assert wrap_angle(graph.edge_transport - ref).abs().max() < 1e-13
    # the reverse edge's transport is the inverse rotation
    rev = graph.edge_id(i, j)
    assert wrap_angle(graph.edge_transport + graph.edge_transport[rev]).abs().max() < 1e-13


@pytest.mark.parametrize("nest", [True, False])
def test_symmetry_classes_give_each_edge_its_own_geometry(nest):
    """The builder computes one pixel per symmetry class; the direct formula on every edge agrees."""
    graph = healpix_graph(64, nest=nest, dtype=torch.float64)
    j, i = graph.edge_index
    a, b, t = edge_geometry(graph.pos[i].numpy(), graph.pos[j].numpy())
    assert np.abs(graph.edge_logmap.numpy() - np.stack([a, b], 1)).max() < 1e-13
    assert wrap_angle(graph.edge_transport - torch.from_numpy(t)).abs().max() < 1e-13


@pytest.mark.parametrize("nside", [1, 2, 4, 8, 32, 128])
def test_healpy_is_mirror_symmetric_as_the_class_table_assumes(nside):
    """The southern classes reuse their mirrors' geometry: z -> -z maps ring r to ring 4 nside - r
    at the same place in the ring, negates healpy's z exactly and permutes its neighbour slots by
    MIRROR_SLOT, at every pixel."""
    p = np.arange(12 * nside**2)

    def mirror(q):
        r, start = ring_of(nside, q)
        return ring_start(nside, 4 * nside - r) + (q - start)

    m = mirror(p)
    assert np.array_equal(np.sort(m), p)
    (x, y, z), (xm, ym, zm) = hp.pix2vec(nside, p), hp.pix2vec(nside, m)
    assert np.array_equal(x, xm) and np.array_equal(y, ym) and np.array_equal(z, -zm)
    nb = hp.get_all_neighbours(nside, p).T
    mirrored = np.where(nb >= 0, mirror(np.maximum(nb, 0)), -1)[:, MIRROR_SLOT]
    assert np.array_equal(mirrored, hp.get_all_neighbours(nside, m).T)


@pytest.mark.parametrize("mask", [False, True])
def test_threads_build_the_same_graph(mask):
    """Chunks run on threads (the neighbour search, the class table and the gathers) give the
    graph that one thread gives, bit for bit, with chunks that hold the missing neighbours."""
    nside = 128  # 196,608 pixels: six chunks
    keep = (np.arange(12 * nside**2) % 7 != 3) if mask else None
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = healpix_graph(nside, mask=keep)
        torch.set_num_threads(3)
        many = healpix_graph(nside, mask=keep)
    finally:
        torch.set_num_threads(threads)
    for key in ("edge_index", "edge_logmap", "edge_transport", "pos", "frame"):
        assert torch.equal(one[key], many[key]), key


@pytest.mark.parametrize("nest", [True, False])
def test_neighbours_without_healpys_ufunc(monkeypatch, nest):
    """Where healpy's neighbour function is no ufunc the public get_all_neighbours gives the same graph."""
    fast = healpix_graph(8, nest=nest)
    name = "_get_neighbors_nest" if nest else "_get_neighbors_ring"
    ufunc = getattr(hp.pixelfunc.pixlib, name)
    monkeypatch.setattr(hp.pixelfunc.pixlib, name, lambda *args: ufunc(*args))
    slow = healpix_graph(8, nest=nest)
    assert torch.equal(fast.edge_index, slow.edge_index) and torch.equal(fast.edge_logmap, slow.edge_logmap)


def test_logmap_direction_is_initial_tangent_of_great_circle():
    graph = healpix_graph(4, nest=False, dtype=torch.float64)
    j, i = graph.edge_index
    xi, xj = graph.pos[i], graph.pos[j]
    d = graph.edge_logmap.norm(dim=-1, keepdim=True)
    tangent = torch.einsum("ea,eab->eb", graph.edge_logmap / d, graph.frame[i, :2])
    # exp_{x_i}(log) = cos d x_i + sin d t must land on x_j
    landed = torch.cos(d) * xi + torch.sin(d) * tangent
    assert torch.allclose(landed, xj, atol=1e-14)


@pytest.mark.parametrize("nest", [True, False])
@pytest.mark.parametrize("nside", [1, 2, 16])
def test_holonomy_is_spherical_excess(nside, nest):
    graph = healpix_graph(nside, nest=nest, dtype=torch.float64)
    for loops in _fan_loops(graph):
        hol = loop_holonomy(graph, loops)
        area = _signed_area(graph.pos, loops)
        assert wrap_angle(hol - area).abs().max() < 1e-10
    # healpy's compass order runs clockwise: the ring of 8 neighbours encloses about four pixels
    if nside > 1:
        ratio = _signed_area(graph.pos, _fan_loops(graph)[2]) / (4 * math.pi / graph.num_nodes)
        assert bool(((ratio > -4.6) & (ratio < -3.8)).all())


def test_partial_sky():
    nside = 8
    full = healpix_graph(nside, dtype=torch.float64)
    theta, _ = hp.pix2ang(nside, np.arange(12 * nside**2), nest=True)
    keep = np.abs(np.pi / 2 - theta) > 0.4  # cut the galactic-plane-like band
    graph = healpix_graph(nside, mask=keep, dtype=torch.float64)
    assert torch.equal(graph.pixel, torch.from_numpy(np.flatnonzero(keep)))
    assert torch.equal(graph.pos, full.pos[graph.pixel])
    # each kept edge carries the full sky's geometry
    src, dst = graph.pixel[graph.edge_index[0]], graph.pixel[graph.edge_index[1]]
    eid = full.edge_id(src, dst)
    assert torch.equal(graph.edge_logmap, full.edge_logmap[eid])
    assert torch.equal(graph.edge_transport, full.edge_transport[eid])
    inside = keep[full.edge_index[0]] & keep[full.edge_index[1]]
    assert graph.num_edges == int(inside.sum())
    for g in (graph, full):  # no slack in the storage that a save would write
        assert g.edge_index.untyped_storage().nbytes() == g.edge_index.numel() * 8
    # UNSEEN map and masked array give the same graph
    m = np.where(keep, 1.5, hp.UNSEEN)
    assert torch.equal(healpix_graph(nside, mask=m).pixel, graph.pixel)
    assert torch.equal(healpix_graph(nside, mask=np.ma.masked_array(m, ~keep)).pixel, graph.pixel)
    assert math.isclose(float(full.node_area.sum()), 4 * math.pi, rel_tol=1e-14)


@pytest.mark.parametrize("nest", [True, False])
@pytest.mark.parametrize("k", [1, 2, 3, -1])
def test_polar_rotation_is_an_exact_symmetry(k, nest):
    nside = 4
    graph = healpix_graph(nside, nest=nest, dtype=torch.float64)
    perm, angles = healpix_rotation(graph, k)
    # oracle: the pixel containing g^{-1} x, g turning longitudes by k * 90 degrees
    x, y, z = graph.pos.T.numpy()
    c, s = math.cos(k * math.pi / 2), math.sin(k * math.pi / 2)
    assert np.array_equal(perm.numpy(), hp.vec2pix(nside, c * x + s * y, -s * x + c * y, z, nest=nest))
    assert angles.abs().max() < 1e-14  # east/north frames are invariant under the rotation
    _assert_symmetry(graph, perm, angles)
    p2, a2 = healpix_rotation(nside, k, nest=nest)
    assert torch.equal(p2, perm) and torch.equal(a2, torch.zeros_like(a2))


def _assert_symmetry(graph, perm, angles):
    moved = gauge_transform(permute_nodes(graph, perm), angles)
    eid = graph.edge_id(moved.edge_index[0], moved.edge_index[1])
    assert moved.num_edges == graph.num_edges
    assert (moved.edge_logmap - graph.edge_logmap[eid]).abs().max() < 1e-10
    assert wrap_angle(moved.edge_transport - graph.edge_transport[eid]).abs().max() < 1e-10


def test_polar_rotation_in_any_gauge_and_on_a_cut_sky():
    nside = 4
    theta, _ = hp.pix2ang(nside, np.arange(12 * nside**2), nest=True)
    keep = np.abs(np.pi / 2 - theta) > 0.3
    graph = healpix_graph(nside, mask=keep, dtype=torch.float64)
    turned = gauge_transform(graph, torch.rand(graph.num_nodes, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 6)
    perm, angles = healpix_rotation(turned, 1)
    assert angles.abs().max() > 0.1
    _assert_symmetry(turned, perm, angles)
    lopsided = keep & (np.arange(len(keep)) >= 8)
    with pytest.raises(ValueError, match="not invariant"):
        healpix_rotation(nside, 1, mask=lopsided)


def test_bad_input():
    for nside in (3, 0, -4, 1 << 30):
        with pytest.raises(ValueError, match="power of two"):
            healpix_graph(nside)
    for nside in (2.0, True, "4"):
        with pytest.raises(TypeError, match="integer power of two"):
            healpix_graph(nside)
    with pytest.raises(ValueError, match=r"192 values.*nside 2"):
        healpix_graph(4, mask=np.ones(48, dtype=bool))
    with pytest.raises(ValueError, match="drops every pixel"):
        healpix_graph(2, mask=np.zeros(48, dtype=bool))
    with pytest.raises(ValueError, match="NaN"):
        healpix_graph(2, mask=np.full(48, np.nan))
    with pytest.raises(TypeError, match="floating torch dtype"):
        healpix_graph(2, dtype=torch.int32)


def test_polar_rotation_matches_healpy_rotator():
    """x[perm] is the map rotated by healpy's Rotator(rot=(-90 k, 0, 0)) (exact at pixel centres)."""
    nside, k = 8, 1
    m = np.random.default_rng(0).standard_normal(12 * nside**2)
    perm, _ = healpix_rotation(nside, k, nest=False)
    rotator = hp.Rotator(rot=(-90 * k, 0, 0), deg=True)
    assert np.abs(rotator.rotate_map_pixel(m) - m[perm.numpy()]).max() < 1e-12


@pytest.mark.slow
def test_nside_1024_builds():
    """The large conversion of the issue: 12.6M pixels, 100M edges (a few GB; minutes on 2 cores)."""
    nside = 1024
    graph = healpix_graph(nside)
    assert graph.num_nodes == 12 * nside**2 and graph.num_edges == 8 * graph.num_nodes - 24
    pick = torch.randint(0, graph.num_edges, (100_000,), generator=torch.Generator().manual_seed(0))
    j, i = graph.edge_index[:, pick]
    exact = lambda nodes: np.stack(hp.pix2vec(nside, graph.pixel[nodes].numpy(), nest=True), 1)
    a, b, t = edge_geometry(exact(i), exact(j))
    assert np.abs(graph.edge_logmap[pick].numpy() - np.stack([a, b], 1)).max() < 1e-6
    assert wrap_angle(graph.edge_transport[pick].double() - torch.from_numpy(t)).abs().max() < 1e-5


def test_too_large_for_memory_is_said_before_any_work():
    import os

    if os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") > 200 * 2**30:
        pytest.skip("this machine could build nside 8192")
    with pytest.raises(MemoryError, match="nside 8192.*GiB"):
        healpix_graph(8192)
