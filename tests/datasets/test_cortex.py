import numpy as np
import pytest

from meshgdl.datasets import cortex
from tests.conftest import require_data


@pytest.fixture(scope="module")
def task():
    require_data("brainspace", "conte69_32k_lh.gii")
    pytest.importorskip("fast_simplification", reason="re-triangulation needs pip install fast-simplification")
    return cortex.parcellation_task("mesulam", seed=0)


def _triangles(faces):
    """Faces as a set of cyclically normalised triples (orientation kept)."""
    roll = np.argmin(faces, 1)
    return {tuple(np.roll(f, -r)) for f, r in zip(faces, roll)}


def _csv(name):
    """A brainspace CSV read with numpy alone, independently of the loader."""
    from meshgdl.datasets.fetch import data_root

    return np.loadtxt(data_root() / "brainspace" / name, delimiter=",")


def _raw_labels():
    """Mesulam labels of (left, right) straight from the CSVs, 0 outside each hemisphere's mask."""
    labels, n = _csv("mesulam_conte69.csv").astype(np.int64), cortex.HEMISPHERE_SIZE
    out = []
    for h, rows in (("lh", slice(0, n)), ("rh", slice(n, 2 * n))):
        mask = _csv(f"conte69_32k_{h}_mask.csv").astype(bool)
        out.append(np.where(mask, labels[rows], 0))
    return out


def _area(s):
    v, f = s.vertices, s.faces
    return 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1).sum()


def _edge_length(s):
    f = s.faces
    return np.linalg.norm(s.vertices[f[:, 0]] - s.vertices[f[:, 1]], axis=1).mean()


def test_mirrored_right_has_the_left_triangles_and_lies_close(task):
    left, right = task["train"], task["mirrored"]
    assert right.num_vertices == left.num_vertices == cortex.HEMISPHERE_SIZE
    np.testing.assert_array_equal(right.faces, left.faces)
    raw = cortex.load_conte69("right")
    assert _triangles(cortex.mirror_surface(raw).faces) == _triangles(left.faces)
    assert not _triangles(raw.faces) & _triangles(left.faces)  # unmirrored: the reversed orientation
    gap = np.linalg.norm(left.vertices[cortex.nearest_vertex(left.vertices, right.vertices)] - right.vertices, axis=1)
    assert gap.mean() < 1.2 * _edge_length(left)


def test_labels_and_medial_wall_agree_with_the_raw_files(task):
    raw_left, raw_right = _raw_labels()
    np.testing.assert_array_equal(task["train"].labels, raw_left)
    np.testing.assert_array_equal(task["mirrored"].labels, raw_right)  # Mesulam's classes match themselves
    for surface, h, raw in ((task["train"], "lh", raw_left), (task["mirrored"], "rh", raw_right)):
        wall = ~_csv(f"conte69_32k_{h}_mask.csv").astype(bool)
        np.testing.assert_array_equal(np.isnan(surface.features).any(1), wall)   # NaN exactly there
        np.testing.assert_array_equal(surface.valid, ~wall & (raw > 0))   # and a few unlabelled vertices


def test_label_copy_references_score_high(task):
    left, right = task["train"], task["mirrored"]
    by_index = cortex.parcellation_scores(cortex.label_copy(left, right, "index"), right.labels)
    nearest_pred = cortex.label_copy(left, right, "nearest")
    nearest = cortex.parcellation_scores(nearest_pred, right.labels)
    # by index: the fraction of labelled right vertices whose left twin in the CSV has their label
    raw_left, raw_right = _raw_labels()
    assert by_index["accuracy"] == pytest.approx(np.mean(raw_left[raw_right > 0] == raw_right[raw_right > 0]), abs=1e-12)
    # nearest: brute-force nearest neighbours on a sample
    sample = np.random.default_rng(3).choice(right.num_vertices, 300, replace=False)
    dist = np.linalg.norm(right.vertices[sample, None] - left.vertices[None], axis=-1)
    np.testing.assert_array_equal(nearest_pred[sample], left.labels[dist.argmin(1)])
    # the values on this template (regression constants, kept beside the checks above)
    assert by_index["accuracy"] == pytest.approx(0.8204, abs=1e-3)
    assert nearest["accuracy"] == pytest.approx(0.8053, abs=1e-3)
    with pytest.raises(ValueError, match="same vertex indexing"):
        cortex.label_copy(left, task["retriangulated"], "index")


def test_retriangulated_surface_is_new_and_carries_labels(task):
    right, retri = task["mirrored"], task["retriangulated"]
    assert 0.45 < retri.num_vertices / right.num_vertices < 0.55
    assert len(np.unique(retri.faces)) == retri.num_vertices  # every vertex in a face
    # a different vertex set: most new vertices are not old ones
    assert (np.linalg.norm(retri.vertices - right.vertices[retri.source], axis=1) > 1e-6).mean() > 0.5
    # the order is shuffled: the nearest old vertex does not grow with the new index
    assert abs(np.corrcoef(np.arange(retri.num_vertices), retri.source)[0, 1]) < 0.05
    other = cortex.retriangulate(right, 0.5, seed=1)
    assert not np.array_equal(other.vertices, retri.vertices)
    assert np.allclose(np.sort(other.vertices, 0), np.sort(retri.vertices, 0))
    # held-out check by brute force on a sample of vertices
    sample = np.random.default_rng(5).choice(retri.num_vertices, 200, replace=False)
    dist = np.linalg.norm(retri.vertices[sample, None] - right.vertices[None], axis=-1)
    np.testing.assert_array_equal(retri.labels[sample], right.labels[dist.argmin(1)])
    np.testing.assert_array_equal(retri.features[sample], right.features[dist.argmin(1)])
    assert _area(retri) == pytest.approx(_area(right), rel=0.01)    # the same surface, fewer triangles
    wall = ~_csv("conte69_32k_rh_mask.csv").astype(bool)
    np.testing.assert_array_equal(np.isnan(retri.features).any(1), wall[retri.source])
    # still the same cortex: the labels agree with index copying as well as on the full mesh
    score = cortex.parcellation_scores(cortex.label_copy(task["train"], retri), retri.labels)
    assert score["accuracy"] > 0.78


def test_rotation_moves_positions_and_keeps_intrinsic_inputs(task):
    retri, rotated = task["retriangulated"], task["rotated"]
    rot = rotated.rotation
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    np.testing.assert_allclose(rotated.vertices, retri.vertices @ rot.T, atol=1e-10)
    np.testing.assert_array_equal(rotated.features, retri.features)
    np.testing.assert_array_equal(rotated.labels, retri.labels)
    np.testing.assert_array_equal(rotated.faces, retri.faces)
    assert _edge_length(rotated) == pytest.approx(_edge_length(retri), rel=1e-12)
    assert np.abs(rotated.vertices - retri.vertices).max() > 10.0
    with pytest.raises(ValueError, match="proper 3x3 rotation"):
        cortex.rotate_surface(retri, np.diag([1.0, 1.0, -1.0]))


def test_standardizer_uses_training_statistics_only(task):
    train, test = task["train"], task["rotated"]
    scaler = cortex.Standardizer().fit(train)
    x = scaler(train.features)[train.valid]
    np.testing.assert_allclose(x.mean(0), 0.0, atol=1e-10)
    np.testing.assert_allclose(x.std(0), 1.0, atol=1e-10)
    # the test surface's own statistics play no part: shifting its inputs shifts the output
    finite = np.isfinite(test.features).all(1)
    shifted = scaler(test.features + 100.0)[finite]
    np.testing.assert_allclose(shifted, scaler(test.features)[finite] + 100.0 / scaler.std, atol=1e-9)
    out = scaler(train.features)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[~np.isfinite(train.features).all(1)], 0.0)
    with pytest.raises(RuntimeError, match="fit"):
        cortex.Standardizer()(train.features)


def test_schaefer_parcels_are_matched_by_overlap():
    require_data("brainspace", "schaefer_100_conte69.csv")
    left = cortex.load_conte69("left", "schaefer_100")
    right = cortex.load_conte69("right", "schaefer_100")
    mapping = cortex.match_parcels(left.labels, right.labels)
    assert sorted(mapping) == list(range(51, 101))
    assert sorted(mapping.values()) == list(range(1, 51))
    assert sum(mapping[r] != r - 50 for r in mapping) > 25  # not "plus 50" for most parcels
    matched = cortex.parcellation_scores(left.labels, cortex.relabel(right.labels, mapping))
    shifted = cortex.parcellation_scores(left.labels, np.where(right.labels > 0, right.labels - 50, 0))
    assert matched["accuracy"] > 0.65 > shifted["accuracy"]


def test_match_parcels_recovers_a_permutation():
    rng = np.random.default_rng(0)
    left = rng.integers(0, 6, 500)
    perm = np.array([0, 14, 12, 15, 11, 13])
    right = perm[left]
    noisy = right.copy()
    noisy[rng.choice(500, 40, replace=False)] = rng.integers(11, 16, 40)
    mapping = cortex.match_parcels(left, noisy)
    assert mapping == {int(perm[k]): k for k in range(1, 6)}


def test_parcellation_scores_exact():
    target = np.array([0, 1, 1, 2, 2, 2])
    pred = np.array([2, 1, 2, 2, 2, 0])
    s = cortex.parcellation_scores(pred, target)
    assert s["accuracy"] == pytest.approx(3 / 5)
    assert s["miou"] == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="hemisphere"):
        cortex.load_conte69("middle")
    with pytest.raises(ValueError, match="parcellation"):
        cortex.load_conte69("left", "brodmann")
    surface = cortex.CortexSurface(np.zeros((3, 3)), np.array([[0, 1, 2]]), np.zeros((3, 3)), np.ones(3, int))
    with pytest.raises(ValueError, match="fraction"):
        cortex.retriangulate(surface, 1.5)
    with pytest.raises(ValueError, match="resolution"):
        cortex.parcellation_task(resolution=0.0)
    with pytest.raises(ValueError, match="same shape"):
        cortex.parcellation_scores(np.zeros(3), np.zeros(4))
    with pytest.raises(FileNotFoundError, match="brainspace"):
        cortex.load_conte69("left", root="/nonexistent")


def test_same_triangles_ignores_order_and_rotation_not_orientation():
    f = np.array([[0, 1, 2], [2, 3, 0]])
    assert cortex.same_triangles(f, np.array([[0, 2, 3], [1, 2, 0]]))
    assert not cortex.same_triangles(f, f[:, ::-1])


def test_decimated_registered_pair_keeps_one_face_list(task):
    left, right = cortex.decimate_registered(task["train"], task["mirrored"], 0.125)
    assert 0.12 < left.num_vertices / cortex.HEMISPHERE_SIZE < 0.13
    np.testing.assert_array_equal(left.faces, right.faces)
    assert right.num_vertices == left.num_vertices
    # still registered: copying by index scores as on the fine surfaces
    fine = cortex.parcellation_scores(task["train"].labels, task["mirrored"].labels)["accuracy"]
    acc = cortex.parcellation_scores(left.labels, right.labels)["accuracy"]
    assert abs(acc - fine) < 0.02
    assert _area(left) == pytest.approx(_area(task["train"]), rel=0.02)
    with pytest.raises(ValueError, match="same triangles"):
        cortex.decimate_registered(task["train"], task["retriangulated"], 0.5)
