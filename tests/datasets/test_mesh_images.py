import numpy as np
import pytest

from meshgdl.datasets.mesh_images import lay_images, log_maps
from meshgdl.datasets.spherical_images import planar_bilinear


@pytest.fixture(scope="module")
def sphere_logmap():
    import trimesh

    mesh = trimesh.creation.icosphere(4)  # 2,562 vertices on the unit sphere
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    return v, log_maps(v, f, [0])[0]


def _image(seed=0):
    rng = np.random.default_rng(seed)
    img = rng.uniform(0, 1, (28, 28))
    img[:5, :9] = 2.0  # asymmetric, so a wrong turn shows
    return img


def test_log_map_is_geodesic(sphere_logmap):
    v, logmap = sphere_logmap
    # on the unit sphere the geodesic distance from vertex 0 is the angle between the positions
    angle = np.arccos(np.clip(v @ v[0], -1, 1))
    near = angle < 1.0
    assert np.abs(np.linalg.norm(logmap, axis=1)[near] - angle[near]).max() < 0.02


def test_a_quarter_turn_lays_the_planar_quarter_turn(sphere_logmap):
    _, logmap = sphere_logmap
    img = _image()
    turned = lay_images(img[None], logmap[None], [np.pi / 2], extent=0.5)
    np.testing.assert_allclose(turned, lay_images(np.rot90(img)[None], logmap[None], [0.0], extent=0.5), atol=1e-12)
    assert not np.allclose(turned, lay_images(img[None], logmap[None], [0.0], extent=0.5), atol=1e-3)


def test_features_follow_the_image(sphere_logmap):
    v, logmap = sphere_logmap
    img = _image(1)
    x = lay_images(img[None], logmap[None], [0.3], extent=0.5)[0]
    assert x[0] == pytest.approx(img[13:15, 13:15].mean())  # the centre vertex: the image's centre
    outside = np.linalg.norm(logmap, axis=1) > 0.5 * np.sqrt(2) * (1 + 1 / 28) + 1e-9
    assert (x[outside] == 0).all() and (x[~outside] > 0).mean() > 0.5
    # the image's top-left block (value 2) lands where R(-0.3) log(v) points up and left
    c, s = np.cos(0.3), np.sin(0.3)
    u, w = c * logmap[:, 0] + s * logmap[:, 1], -s * logmap[:, 0] + c * logmap[:, 1]
    np.testing.assert_allclose(x, planar_bilinear(img, u, w, 0.5), atol=1e-12)
    assert x[(u < -0.3) & (u > -0.4) & (w > 0.35) & (w < 0.45)].min() > 1.5
