r"""Cortical parcellation on the conte69 surfaces (brainspace 0.3.0): data, test surfaces, references.

Each hemisphere of conte69 is a 32,492-vertex triangle mesh with per-vertex intrinsic inputs
(cortical thickness, curvature, T1w/T2w ratio; NaN on the medial wall) and per-vertex labels
(Mesulam's 4 classes, Schaefer parcels; 0 = medial wall). Both hemispheres are registered to one
template: mirrored (:math:`x \to -x`, faces reversed) the right mesh has the left's triangles and
vertex indexing and lies about one edge length from the left surface, so copying a left label by
vertex index or from the nearest left vertex already scores high (:func:`label_copy`).
A method meant for unregistered surfaces is therefore also tested on the mirrored right hemisphere
re-triangulated with a different vertex set and order (:func:`retriangulate`), and on that surface
after a random global rotation (:func:`rotate_surface`); :func:`parcellation_task` builds all three.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .fetch import data_path, fetch_command

HEMISPHERE_SIZE = 32492
FEATURES = ("thickness", "curvature", "t1wt2w")
PARCELLATIONS = ("mesulam", "schaefer_100", "schaefer_200", "vosdewael_100")


@dataclass
class CortexSurface:
    """One cortical surface with its inputs and labels.

    Attributes:
        vertices: :math:`[V, 3]` float64 positions (mm).
        faces: :math:`[F, 3]` int64, counter-clockwise seen from outside.
        features: :math:`[V, 3]` float64 thickness, curvature, T1w/T2w; NaN on the medial wall.
        labels: :math:`[V]` int64 parcel ids, 0 on the medial wall (excluded from loss and metrics).
        name: a short description.
    """

    vertices: np.ndarray
    faces: np.ndarray
    features: np.ndarray
    labels: np.ndarray
    name: str = ""

    @property
    def valid(self) -> np.ndarray:
        """:math:`[V]` bool: labelled vertices with finite inputs (the medial wall excluded)."""
        return (self.labels > 0) & np.isfinite(self.features).all(1)

    @property
    def num_vertices(self) -> int:
        return len(self.vertices)


def _path(name: str, root) -> Path:
    if root is None:
        return data_path("brainspace", name)
    path = Path(root) / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; copy brainspace's file there or fetch it with "
                                f"`{fetch_command('brainspace')}` and pass root=None")
    return path


def _csv(name: str, root) -> np.ndarray:
    return np.loadtxt(_path(name, root), delimiter=",", ndmin=1)


def load_conte69(hemisphere: str = "left", parcellation: str = "mesulam", *, root=None) -> CortexSurface:
    """Read one conte69 hemisphere with its inputs and labels.

    Args:
        hemisphere (str): ``"left"`` or ``"right"``, as stored (not mirrored). (default: ``"left"``)
        parcellation (str): one of :data:`PARCELLATIONS`. Right-hemisphere ids are kept as in the
            file; :func:`match_parcels` pairs them with left ids. (default: ``"mesulam"``)
        root (optional): a folder holding the brainspace files (default: the fetched data root).
    """
    from ..geometry.mesh import read_mesh

    if hemisphere not in ("left", "right"):
        raise ValueError(f"hemisphere must be 'left' or 'right', got {hemisphere!r}")
    if parcellation not in PARCELLATIONS:
        raise ValueError(f"unknown parcellation {parcellation!r}; choose from {PARCELLATIONS}")
    h = hemisphere[0] + "h"
    vertices, faces = read_mesh(_path(f"conte69_32k_{h}.gii", root))
    rows = slice(0, HEMISPHERE_SIZE) if hemisphere == "left" else slice(HEMISPHERE_SIZE, 2 * HEMISPHERE_SIZE)
    features = np.stack([_csv(f"conte69_32k_{n}.csv", root)[rows] for n in FEATURES], 1)
    labels = _csv(f"{parcellation}_conte69.csv", root)[rows].astype(np.int64)
    mask = _csv(f"conte69_32k_{h}_mask.csv", root).astype(bool)
    labels[~mask] = 0
    return CortexSurface(vertices, faces, features, labels, f"{hemisphere} hemisphere")


def mirror_surface(surface: CortexSurface) -> CortexSurface:
    """Reflect :math:`x \\to -x` and reverse the faces, so that they stay counter-clockwise."""
    vertices = surface.vertices * np.array([-1.0, 1.0, 1.0])
    return replace(surface, vertices=vertices, faces=surface.faces[:, ::-1].copy(),
                   name=f"mirrored {surface.name}")


def nearest_vertex(source: np.ndarray, query: np.ndarray) -> np.ndarray:
    """For each query point :math:`[Q, 3]`, the index of the nearest source vertex :math:`[V, 3]`."""
    from scipy.spatial import cKDTree

    return cKDTree(source).query(query)[1].astype(np.int64)


def retriangulate(surface: CortexSurface, fraction: float = 0.5, *, seed: int = 0) -> CortexSurface:
    """Quadric decimation to ``fraction`` of the vertices, then a random vertex order.

    The new vertices are placed by the decimator (not a subset of the old ones); each takes the
    inputs and label of the nearest original vertex. ``result.source`` holds that vertex.
    Needs the ``fast-simplification`` package (``pip install 'meshgdl[examples]'``).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    try:
        import fast_simplification
    except ImportError:
        raise ImportError("retriangulate needs fast-simplification: pip install fast-simplification") from None
    v, f = fast_simplification.simplify(surface.vertices.astype(np.float64),
                                        surface.faces.astype(np.int32), target_reduction=1.0 - fraction)
    v, f = np.asarray(v, np.float64), np.asarray(f, np.int64)
    used = np.unique(f)
    if len(used) < len(v):  # the decimator may leave vertices that belong to no face
        remap = np.full(len(v), -1)
        remap[used] = np.arange(len(used))
        v, f = v[used], remap[f]
    order = np.random.default_rng(seed).permutation(len(v))  # new vertex k is old vertex order[k]
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    v, f = v[order], rank[f]
    source = nearest_vertex(surface.vertices, v)
    out = CortexSurface(v, f, surface.features[source], surface.labels[source],
                        f"{surface.name}, re-triangulated ({len(v)} vertices, shuffled)")
    out.source = source
    return out


def random_rotation(seed: int = 0) -> np.ndarray:
    """A uniformly random rotation matrix :math:`[3, 3]` (det +1)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def rotate_surface(surface: CortexSurface, rotation=None, *, seed: int = 0) -> CortexSurface:
    """Rotate the positions about the origin: :math:`x \\to R x` (default: :func:`random_rotation`)."""
    rot = random_rotation(seed) if rotation is None else np.asarray(rotation, np.float64)
    if rot.shape != (3, 3) or not np.allclose(rot @ rot.T, np.eye(3), atol=1e-8) or np.linalg.det(rot) < 0:
        raise ValueError("rotation must be a proper 3x3 rotation matrix (orthogonal, det +1)")
    out = replace(surface, vertices=surface.vertices @ rot.T, name=f"{surface.name}, rotated")
    out.rotation = rot
    return out


def match_parcels(left_labels, right_labels) -> dict[int, int]:
    """Pair right parcel ids with left ones by their overlap on the shared vertex indexing.

    Schaefer's right ids are not the left ids plus a constant for most parcels, so each right parcel
    is assigned the left parcel it overlaps most, one to one (Hungarian assignment on the overlap
    counts). Both label arrays index the same template vertices; 0 is never matched.

    Returns:
        ``{right_id: left_id}`` for every nonzero right id.
    """
    from scipy.optimize import linear_sum_assignment

    left, right = np.asarray(left_labels), np.asarray(right_labels)
    if left.shape != right.shape:
        raise ValueError(f"labels must index the same vertices, got shapes {left.shape} and {right.shape}")
    both = (left > 0) & (right > 0)
    lid, rid = np.unique(left[left > 0]), np.unique(right[right > 0])
    overlap = np.zeros((len(rid), len(lid)))
    np.add.at(overlap, (np.searchsorted(rid, right[both]), np.searchsorted(lid, left[both])), 1)
    rows, cols = linear_sum_assignment(-overlap)
    return {int(rid[r]): int(lid[c]) for r, c in zip(rows, cols)}


def relabel(labels, mapping: dict[int, int]) -> np.ndarray:
    """Replace ids by ``mapping``; 0 and ids without a partner become 0."""
    labels = np.asarray(labels)
    table = np.zeros(int(labels.max()) + 1, dtype=np.int64)
    for a, b in mapping.items():
        if a <= labels.max():
            table[a] = b
    return table[labels]


class Standardizer:
    """Per-channel standardisation with statistics of the training surface only.

    ``fit`` takes the mean and standard deviation of the finite inputs of the valid training
    vertices; calling it maps any surface's inputs to :math:`(x - \\mu) / \\sigma` and puts 0 (the
    training mean) where an input is NaN (the medial wall), so that no NaN reaches a network.
    """

    def fit(self, surface: CortexSurface) -> "Standardizer":
        x = surface.features[surface.valid]
        if len(x) == 0:
            raise ValueError("the training surface has no valid vertex to take statistics from")
        self.mean, self.std = x.mean(0), x.std(0)
        if (self.std == 0).any():
            raise ValueError(f"an input channel is constant on the training surface (std {self.std})")
        return self

    def __call__(self, features: np.ndarray) -> np.ndarray:
        if not hasattr(self, "mean"):
            raise RuntimeError("call fit(training_surface) before standardising")
        return np.nan_to_num((features - self.mean) / self.std, nan=0.0)


def label_copy(train: CortexSurface, test: CortexSurface, by: str = "nearest") -> np.ndarray:
    """Reference predictions that copy training labels: ``by="index"`` (same vertex id; needs the
    same vertex count) or ``by="nearest"`` (the nearest training vertex in space)."""
    if by == "index":
        if test.num_vertices != train.num_vertices:
            raise ValueError("copying by index needs surfaces with the same vertex indexing "
                             f"({train.num_vertices} vs {test.num_vertices} vertices)")
        return train.labels.copy()
    if by == "nearest":
        return train.labels[nearest_vertex(train.vertices, test.vertices)]
    raise ValueError(f"by must be 'index' or 'nearest', got {by!r}")


def parcellation_scores(pred, target) -> dict[str, float]:
    r"""Accuracy and mean IoU over the vertices with ``target > 0``.

    Mean IoU averages :math:`|P_c \cap T_c| / |P_c \cup T_c|` over the classes present in the
    target (on the valid vertices); a prediction of 0 counts as wrong.
    """
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {pred.shape} and {target.shape}")
    valid = target > 0
    p, t = pred[valid], target[valid]
    ious = [((p == c) & (t == c)).sum() / ((p == c) | (t == c)).sum() for c in np.unique(t)]
    return {"accuracy": float((p == t).mean()), "miou": float(np.mean(ious))}


def same_triangles(faces_a, faces_b) -> bool:
    """Whether two face arrays hold the same oriented triangles, in any order and any rotation."""
    def canon(f):
        f = np.asarray(f)
        start = np.argmin(f, 1)[:, None]
        f = np.take_along_axis(f, (start + np.arange(3)) % 3, 1)  # rotate the smallest id first
        return f[np.lexsort(f.T[::-1])]
    return np.shape(faces_a) == np.shape(faces_b) and np.array_equal(canon(faces_a), canon(faces_b))


def decimate_registered(left: CortexSurface, right: CortexSurface, fraction: float):
    """Decimate two registered surfaces (same triangles, same vertex ids) alike.

    The quadric decimation of ``left`` to ``fraction`` of its vertices is recorded and the same
    edge collapses are replayed on ``right``, so the two coarse surfaces again share one face list
    and vertex indexing. Each coarse vertex takes the inputs and label of the nearest vertex of
    its own fine surface.
    """
    import fast_simplification

    if not same_triangles(left.faces, right.faces):
        raise ValueError("decimate_registered needs surfaces with the same triangles (a registered pair)")
    faces = left.faces.astype(np.int32)
    v, f, collapses = fast_simplification.simplify(left.vertices, faces, target_reduction=1.0 - fraction,
                                                   return_collapses=True)
    w, g, _ = fast_simplification.replay_simplification(right.vertices, faces, collapses)
    out = []
    for fine, pos, tri in ((left, v, f), (right, w, g)):
        source = nearest_vertex(fine.vertices, pos)
        out.append(CortexSurface(np.asarray(pos, np.float64), np.asarray(tri, np.int64),
                                 fine.features[source], fine.labels[source], fine.name))
    return out[0], out[1]


def parcellation_task(parcellation: str = "mesulam", *, resolution: float = 1.0, fraction: float = 0.5,
                      seed: int = 0, root=None) -> dict[str, CortexSurface]:
    """The training surface and the three test surfaces of the cortical parcellation task.

    Returns ``{"train": left, "mirrored": right mirrored, "retriangulated": ..., "rotated": ...}``.
    Right-hemisphere labels are mapped onto left ids by :func:`match_parcels` (Mesulam's classes
    match themselves), and the mirrored right surface takes the left's face array (the same
    triangles, checked). ``resolution < 1`` decimates the registered pair alike
    (:func:`decimate_registered`), to that fraction of the template's 32,492 vertices. The
    re-triangulated surface is an independent decimation of the full mirrored right to
    ``resolution * fraction`` of the template's vertices, in a random order (``seed``); the rotated
    one is that surface under :func:`random_rotation` (``seed``).
    """
    if not 0.0 < resolution <= 1.0:
        raise ValueError(f"resolution must lie in (0, 1], got {resolution}")
    left = load_conte69("left", parcellation, root=root)
    right = mirror_surface(load_conte69("right", parcellation, root=root))
    if not same_triangles(left.faces, right.faces):
        raise ValueError("the mirrored right hemisphere does not share the left's triangles; "
                         "are these the conte69 template surfaces?")
    right.faces = left.faces.copy()
    right.labels = relabel(right.labels, match_parcels(left.labels, right.labels))
    full_right = right
    if resolution < 1.0:
        left, right = decimate_registered(left, right, resolution)
    retri = retriangulate(full_right, resolution * fraction, seed=seed)
    rotated = rotate_surface(retri, seed=seed)
    left.name, right.name = "left (train)", "right, mirrored"
    retri.name, rotated.name = "right, re-triangulated", "right, re-triangulated + rotated"
    return {"train": left, "mirrored": right, "retriangulated": retri, "rotated": rotated}
