import math

import healpy as hp
import numpy as np
import pytest
import torch

from meshgdl import gauge_transform, permute_nodes
from meshgdl.geometry import healpix_graph, healpix_grid_graph, healpix_rotation, loop_holonomy
from meshgdl.graph import wrap_angle


def _in_grid_frames(grid):
    """The east/north graph gauge-transformed to the grid graph's frames: exact Levi-Civita
    log maps and transports between those frames."""
    base = healpix_graph(grid.nside, mask=_mask_of(grid), dtype=torch.float64)
    e1 = grid.frame[:, 0]
    angles = torch.atan2((e1 * base.frame[:, 1]).sum(-1), (e1 * base.frame[:, 0]).sum(-1))
    moved = gauge_transform(base, angles)
    assert torch.allclose(moved.frame, grid.frame, atol=1e-12)
    assert torch.equal(moved.edge_index, grid.edge_index)
    return moved


def _mask_of(grid):
    keep = np.zeros(12 * grid.nside**2, dtype=bool)
    keep[grid.pixel.numpy()] = True
    return keep


def _corner_pixels(grid):
    return torch.bincount(grid.edge_index[1], minlength=grid.num_nodes) < 8


@pytest.mark.parametrize("nside", [1, 2, 8, 32])
def test_steps_are_the_face_grid_and_transports_quarter_turns(nside):
    grid = healpix_grid_graph(nside, dtype=torch.float64)
    x, y, face = hp.pix2xyf(nside, grid.pixel.numpy(), nest=True)
    j, i = grid.edge_index.numpy()
    step = grid.edge_logmap / grid.edge_logmap.norm(dim=1, keepdim=True)
    step = (step / step.abs().max(1, keepdim=True).values).numpy()
    assert np.abs(step - np.round(step)).max() < 1e-12  # exact grid directions
    inside = face[i] == face[j]
    assert inside.any() == (nside > 1)
    assert np.array_equal(np.round(step[inside]).astype(int), np.stack([x[j] - x[i], y[j] - y[i]], 1)[inside])
    quarter = grid.edge_transport.numpy() / (math.pi / 2)
    assert np.array_equal(quarter, np.round(quarter)) and (quarter[inside] == 0).all()
    assert (quarter[~inside] != 0).any()
    # lengths are the exact geodesic lengths, and the transport of j -> i undoes that of i -> j
    exact = _in_grid_frames(grid)
    assert torch.allclose(grid.edge_logmap.norm(dim=1), exact.edge_logmap.norm(dim=1), atol=1e-14)
    reverse = grid.edge_id(grid.edge_index[1], grid.edge_index[0])
    assert torch.equal(wrap_angle(grid.edge_transport + grid.edge_transport[reverse]), torch.zeros(grid.num_edges))


@pytest.mark.parametrize("nside", [2, 4, 8, 32])
def test_transports_are_levi_civita_rounded_to_quarter_turns_away_from_the_cones(nside):
    grid = healpix_grid_graph(nside, dtype=torch.float64)
    exact = _in_grid_frames(grid)
    error = wrap_angle(exact.edge_transport - grid.edge_transport)
    corner = _corner_pixels(grid)
    assert int(corner.sum()) == 24
    away = ~(corner[grid.edge_index[0]] | corner[grid.edge_index[1]])
    assert error[away].abs().max() < math.radians(38)  # measured: 5.0, 34.3, 36.7, 37.2 at nside 2, 8, 32, 128
    rounded = torch.round(exact.edge_transport / (math.pi / 2)) * (math.pi / 2)
    assert torch.equal(wrap_angle(rounded - grid.edge_transport)[away], torch.zeros(int(away.sum()), dtype=torch.float64))
    # log maps: exact grid directions, off the true geodesic directions by the grid's skew
    theta = torch.atan2(grid.edge_logmap[:, 1], grid.edge_logmap[:, 0])
    true_theta = torch.atan2(exact.edge_logmap[:, 1], exact.edge_logmap[:, 0])
    assert wrap_angle(theta - true_theta).abs().max() < math.radians(40)
    assert error.abs().max() < math.radians(64)


@pytest.mark.parametrize("nside", [2, 8])
def test_the_three_face_points_are_cones_of_a_quarter_turn(nside):
    grid = healpix_grid_graph(nside, dtype=torch.float64)
    exact = _in_grid_frames(grid)
    corner = torch.nonzero(_corner_pixels(grid)).flatten()
    # the three corner pixels around each point are pairwise neighbours: triangles
    pairs = {tuple(e) for e in grid.edge_index.T.tolist()}
    loops = []
    for a in corner.tolist():
        for b in corner.tolist():
            for c in corner.tolist():
                if a < b and a < c and b != c and {(a, b), (b, c), (c, a)} <= pairs:
                    loops.append([a, b, c])
    loops = torch.tensor(loops)
    assert len(loops) == 16  # 8 points, both orientations
    cone = loop_holonomy(grid, loops)
    assert torch.allclose(cone.abs(), torch.full_like(cone, math.pi / 2), atol=1e-12)
    # the sphere's own holonomy there is the triangle's small area, so rounding must fail somewhere
    assert loop_holonomy(exact, loops).abs().max() < 0.5


@pytest.mark.parametrize("mask", ["full", "cut"])
@pytest.mark.parametrize("nside", [1, 2, 8])
def test_polar_rotations_map_the_grid_gauge_onto_itself_with_zero_angles(nside, mask):
    npix = 12 * nside**2
    keep = None if mask == "full" else np.abs(hp.pix2vec(nside, np.arange(npix), nest=True)[2]) < 0.6
    grid = healpix_grid_graph(nside, mask=keep, dtype=torch.float64)
    plain = healpix_graph(nside, mask=keep, dtype=torch.float64)
    assert torch.equal(grid.edge_index, plain.edge_index) and torch.equal(grid.pos, plain.pos)
    for k in (1, 2, 3):
        perm, angles = healpix_rotation(grid, k)
        assert angles.abs().max() < 1e-12
        moved = permute_nodes(grid, perm)
        ids = grid.edge_id(moved.edge_index[0], moved.edge_index[1])
        assert torch.equal(moved.edge_transport, grid.edge_transport[ids])
        assert torch.allclose(moved.edge_logmap, grid.edge_logmap[ids], atol=1e-13)


def test_dtype_validation_and_bad_input():
    grid = healpix_grid_graph(2)
    assert grid.frame.dtype == torch.float32 and grid.nest
    assert torch.allclose(grid.frame @ grid.frame.transpose(1, 2), torch.eye(3).expand(48, 3, 3), atol=1e-6)
    assert (torch.linalg.det(grid.frame.double()) > 0).all()
    with pytest.raises(TypeError, match="floating"):
        healpix_grid_graph(2, dtype=torch.int64)
    with pytest.raises(ValueError, match="power of two"):
        healpix_grid_graph(3)
