"""Per-vertex labels of a mesh from the label GIFTI beside it (FreeSurfer's and Connectome Workbench's format)."""
from __future__ import annotations

import os

import numpy as np

GIFTI_DATA = (".label.gii", ".func.gii", ".shape.gii")  # per-vertex data beside a surface, not surfaces


def stem(mesh_path: str) -> str:
    """``NAME`` of ``NAME.ply``, ``NAME.surf.gii`` or ``NAME.surf.gii.gz`` (``.surf`` kept)."""
    return mesh_path[: -len(".gii.gz")] if mesh_path.lower().endswith(".gii.gz") else os.path.splitext(mesh_path)[0]


def label_gifti_path(mesh_path) -> str | None:
    """``NAME.label.gii`` beside ``NAME.ply`` (or beside ``NAME.surf.gii``, FreeSurfer's and
    Connectome Workbench's naming), or ``None`` when there is none."""
    name = stem(str(mesh_path))
    stems = [name] + ([name[: -len(".surf")]] if name.lower().endswith(".surf") else [])
    for s in stems:
        for ext in (".label.gii", ".label.gii.gz"):
            if os.path.isfile(s + ext):
                return s + ext
    return None


def read_label_gifti(path, num_vertices: int) -> np.ndarray:
    """``[V]`` int64 labels from the first data array of a label GIFTI (the keys of its label
    table); negative keys become ``-1``, unlabelled."""
    try:
        import nibabel
    except ImportError:
        raise ImportError("reading GIFTI needs nibabel: pip install 'meshgdl[gifti]'") from None
    image = nibabel.load(str(path))
    if not image.darrays:
        raise ValueError(f"{path} holds no data array; a label GIFTI has one int array of a key per vertex")
    labels = np.asarray(image.darrays[0].data)
    if labels.ndim != 1 or len(labels) != num_vertices:
        raise ValueError(f"{path} holds labels of shape {list(labels.shape)}, but its mesh has {num_vertices} "
                         "vertices; give one label per vertex")
    if not np.issubdtype(labels.dtype, np.integer) and not np.array_equal(labels, np.round(labels)):
        raise ValueError(f"{path} holds non-integer values; a label GIFTI holds integer keys")
    return np.maximum(labels.astype(np.int64), -1)
