"""Group actions on images and HEALPix maps, orbits, and the orbit metrics."""
import math

import numpy as np
import pytest
import torch

from meshgdl.ensembles import (CyclicRotations, HealpixPolarRotations, PeriodicTranslations, ProductGroup, accuracy, augment_full_orbit, augment_random,
                               ensemble_size_curve, orbit, orbit_divergence, orbit_same_predictions, rotate_images)
from meshgdl.ensembles.augment import _interpolated_rotation


def test_interpolated_rotation_agrees_with_exact_quarter_turns():
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    for k in range(4):
        torch.testing.assert_close(_interpolated_rotation(x, k * math.pi / 2), torch.rot90(x, k, dims=(-2, -1)),
                                   rtol=0, atol=1e-12)


def test_interpolated_rotation_turns_a_point_about_the_centre():
    # a single bright pixel at (row 3, col 5) of a 9 x 9 image sits at (x, y) = (1, -1) from the centre with
    # y up; turned by 45 degrees counter-clockwise it lands at (0, sqrt 2): row 4 - 1.41, column 4
    img = torch.zeros(9, 9, dtype=torch.float64)
    img[3, 5] = 1.0
    out = rotate_images(img, math.pi / 4)
    rows, cols = torch.meshgrid(torch.arange(9.0, dtype=torch.float64), torch.arange(9.0, dtype=torch.float64),
                                indexing="ij")
    mass = out.sum()
    assert ((out * rows).sum() / mass).item() == pytest.approx(4 - math.sqrt(2), abs=0.05)
    assert ((out * cols).sum() / mass).item() == pytest.approx(4.0, abs=0.05)


def test_c4_is_a_group_action_and_c8_contains_it():
    x = torch.randn(5, 7, 7, dtype=torch.float64)
    c4, c8 = CyclicRotations(4), CyclicRotations(8)
    for g in range(4):
        for h in range(4):
            torch.testing.assert_close(c4.act(c4.act(x, h), g), c4.act(x, (g + h) % 4), rtol=0, atol=0)
        torch.testing.assert_close(c8.act(x, 2 * g), c4.act(x, g), rtol=0, atol=0)
    with pytest.raises(ValueError, match="not square"):
        rotate_images(torch.zeros(3, 4), math.pi / 2)


def test_full_and_random_orbit_augmentation():
    x, y = torch.randn(3, 4, 4), torch.tensor([0, 1, 2])
    group = CyclicRotations(4)
    xa, ya = augment_full_orbit(x, y, group)
    assert xa.shape == (12, 4, 4) and ya.tolist() == [0, 1, 2] * 4
    torch.testing.assert_close(xa[2 * 3 + 1], torch.rot90(x[1], 2, dims=(-2, -1)))
    xr, yr = augment_random(x, y, group, torch.Generator().manual_seed(0))
    orbits = orbit(x, group)  # [4, 3, 4, 4]
    for b in range(3):
        assert any(torch.equal(xr[b], orbits[g, b]) for g in range(4))
    assert torch.equal(yr, y)


def test_healpix_polar_rotation_turns_longitudes_by_quarter_turns():
    import healpy as hp

    nside = 4
    group = HealpixPolarRotations(nside, node_dim=-1)
    theta, phi = hp.pix2ang(nside, np.arange(12 * nside**2), nest=True)
    signal = torch.from_numpy(np.cos(phi - 0.3) * np.sin(theta) + np.cos(theta))[None]  # [1, Npix]
    for g in range(4):
        rotated = group.act(signal, g)
        expected = torch.from_numpy(np.cos(phi - g * np.pi / 2 - 0.3) * np.sin(theta) + np.cos(theta))[None]
        torch.testing.assert_close(rotated, expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="pixels"):
        group.act(torch.zeros(1, 10), 1)


def test_metrics_of_invariant_and_non_invariant_outputs():
    invariant = torch.softmax(torch.randn(1, 5, 3), -1).expand(4, 5, 3)
    assert orbit_same_predictions(invariant).tolist() == [4] * 5
    torch.testing.assert_close(orbit_divergence(invariant), torch.zeros(5), rtol=0, atol=1e-6)
    probs = torch.tensor([[[0.9, 0.1]], [[0.2, 0.8]], [[0.6, 0.4]], [[0.5, 0.5]]])
    assert orbit_same_predictions(probs).tolist() == [3]  # ties go to the first class
    kl = sum(0.9 * math.log(0.9 / q0) + 0.1 * math.log(0.1 / q1) for q0, q1 in probs[:, 0].tolist()) / 4
    assert orbit_divergence(probs).item() == pytest.approx(kl, rel=1e-5)
    assert accuracy(probs[0], torch.tensor([0])) == 1.0


def test_ensemble_size_curve_averages_members():
    members = torch.softmax(torch.randn(8, 4, 10, 3, dtype=torch.float64), -1)
    rows = ensemble_size_curve(members, [1, 2, 8], labels=torch.zeros(10, dtype=torch.long))
    assert [r["ensembles"] for r in rows] == [8, 4, 1]
    single = [orbit_same_predictions(m).double().mean().item() for m in members]
    assert rows[0]["orbit_same"] == pytest.approx(np.mean(single))
    assert rows[2]["orbit_same"] == pytest.approx(orbit_same_predictions(members.mean(0)).double().mean().item())
    with pytest.raises(ValueError, match="between 1 and"):
        ensemble_size_curve(members, [9])


def test_periodic_translations_visit_every_shift_once():
    x = torch.arange(12.0).reshape(3, 4)
    group = PeriodicTranslations((3, 4))
    copies = orbit(x, group)  # [12, 3, 4]
    # every copy puts a different site at the origin, and every site's value appears exactly once there
    assert sorted(copies[:, 0, 0].tolist()) == list(range(12))
    torch.testing.assert_close(group.act(x, 1 * 4 + 2), torch.roll(x, (1, 2), dims=(0, 1)))
    # an Ising observable, the energy of a periodic configuration, is invariant under the whole group
    spins = torch.randint(0, 2, (3, 4)).double() * 2 - 1
    energy = lambda s: -(s * s.roll(1, 0) + s * s.roll(1, 1)).sum()  # noqa: E731
    assert all(energy(c) == energy(spins) for c in orbit(spins, group))
    with pytest.raises(ValueError, match="the lattice is"):
        group.act(torch.zeros(4, 3), 1)


def test_rotations_and_translations_of_a_periodic_lattice_form_a_group_of_distinct_elements():
    """The orbit of a generic configuration under C4 x translations has 4 L^2 distinct copies and is
    closed under both generators (a quarter turn of a translate is another element's image)."""
    side = 4
    group = ProductGroup(CyclicRotations(4), PeriodicTranslations((side, side)))
    assert group.order == 4 * side * side
    x = torch.randn(side, side, dtype=torch.float64)
    copies = orbit(x, group)
    torch.testing.assert_close(copies[0], x)
    keys = {tuple(c.flatten().tolist()) for c in copies}
    assert len(keys) == group.order
    for c in copies:
        for gen in (torch.rot90(c, 1, dims=(-2, -1)), torch.roll(c, 1, dims=-1)):
            assert tuple(gen.flatten().tolist()) in keys
    # element i |B| + j: the translation j first, then the rotation i
    torch.testing.assert_close(group.act(x, 1 * side * side + 5), torch.rot90(torch.roll(x, (1, 1), dims=(0, 1)), 1))
    with pytest.raises(ValueError, match="at least one group"):
        ProductGroup()
