r"""Planar images laid on a real mesh through its geodesic log map (GEM-CNN's MNIST-on-a-mesh task).

The image lies on the tangent plane of a centre vertex :math:`c`, as the square :math:`[-a, a]^2`
(``extent``), turned by an angle :math:`\alpha`; vertex :math:`v` takes the image's bilinear value
at :math:`R(-\alpha)\, \log_c(v)`, where :math:`\log_c` is the mesh's own logarithmic map at
:math:`c` (the vector heat method of Sharp et al. 2019, through ``potpourri3d``), in the tangent
basis potpourri3d gives :math:`c`. The features are per-vertex scalars, intrinsic to the surface.
"""
from __future__ import annotations

import numpy as np

from .spherical_images import planar_bilinear


def decimated_bunny(num_vertices: int = 2000, root=None) -> tuple[np.ndarray, np.ndarray]:
    """The watertight Stanford bunny of pymeshlab's samples (``python -m meshgdl.datasets.fetch
    pymeshlab``), decimated to about ``num_vertices`` with ``fast_simplification``; ``root`` a folder
    holding ``bunny.obj`` if you have your own copy. Returns ``vertices [V, 3]`` and ``faces [F, 3]``."""
    import trimesh

    from .fetch import data_path

    try:
        import fast_simplification
    except ImportError as err:
        raise ImportError("decimating the bunny needs `pip install fast-simplification`") from err
    path = f"{root}/bunny.obj" if root else data_path("pymeshlab", "bunny.obj")
    mesh = trimesh.load(path, process=False)
    v, f = np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)
    if num_vertices < len(v):
        v, f = fast_simplification.simplify(v, f, target_reduction=1 - num_vertices / len(v))
    return np.asarray(v, dtype=np.float64), np.asarray(f, dtype=np.int64)


def log_maps(vertices, faces, centres) -> np.ndarray:
    """Geodesic log maps ``[K, V, 2]`` of every vertex at each of ``K`` centre vertices."""
    import potpourri3d as pp3d

    solver = pp3d.MeshVectorHeatSolver(np.asarray(vertices, dtype=np.float64), np.asarray(faces))
    return np.stack([solver.compute_log_map(int(c)) for c in np.atleast_1d(centres)])


def lay_images(images, logmaps, angles, extent: float) -> np.ndarray:
    r"""Per-vertex values ``[M, V]`` of ``[M, H, W]`` images laid through ``[M, V, 2]`` log maps and
    turned by ``angles [M]`` (radians, counter-clockwise in the log map's basis)."""
    angles = np.asarray(angles, dtype=np.float64)
    c, s = np.cos(angles)[:, None], np.sin(angles)[:, None]
    x, y = logmaps[..., 0], logmaps[..., 1]
    return planar_bilinear(images, c * x + s * y, -s * x + c * y, extent)  # R(-alpha) log_c(v)


def mesh_image_task(images, labels, vertices, faces, num_samples: int, *, extent: float, rotate: bool,
                    num_centres: int = 64, seed: int = 0) -> dict:
    """``num_samples`` of the ``images [M, H, W]`` (in [0, 1]) laid at random vertices (one of
    ``num_centres`` drawn once), upright (``rotate=False``) or turned by a uniform angle. Returns
    numpy arrays ``x [M, V]``, ``y [M]``, ``centre [M]`` (vertex), ``angle [M]`` and ``image_index [M]``."""
    rng = np.random.default_rng(seed)
    centres = rng.choice(len(vertices), size=num_centres, replace=False)
    maps = log_maps(vertices, faces, centres)
    which = rng.integers(0, num_centres, num_samples)
    index = rng.choice(len(images), size=num_samples, replace=num_samples > len(images))
    angle = rng.uniform(0, 2 * np.pi, num_samples) if rotate else np.zeros(num_samples)
    x = lay_images(np.asarray(images)[index], maps[which], angle, extent)
    return {"x": x, "y": np.asarray(labels)[index], "centre": centres[which], "angle": angle, "image_index": index}
