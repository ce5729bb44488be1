"""Cached sets of spherical MNIST / Fashion-MNIST maps on HEALPix, for classification and segmentation."""
from __future__ import annotations

import numpy as np
import torch

from .generated import GeneratedDataset


class SphericalImages(GeneratedDataset):
    r"""Planar images placed on the HEALPix sphere (:mod:`meshgdl.datasets.spherical_images`),
    generated once and cached in ``root/processed`` under a name that encodes every parameter.

    * ``task="classification"``: one image a map, placed by ``rotate``: ``"none"`` (at the north
      pole, upright: the NR set) or ``"so3"`` (a uniform rotation: the R set); ``y`` its class.
    * ``task="segmentation"``: ``per_map`` images at random places whose caps do not overlap, each
      ``"upright"`` (NR: a uniform place, no turn about its centre) or ``"so3"`` (R); ``y`` per pixel
      the image's class + 1 where its intensity exceeds ``threshold``, 0 for background.

    Args:
        root (str): the folder of the cache.
        source (str): ``"mnist"`` or ``"fashion_mnist"``. (default: ``"mnist"``)
        split (str): ``"train"`` or ``"test"`` images. (default: ``"train"``)
        task (str): ``"classification"`` or ``"segmentation"``. (default: ``"classification"``)
        nside (int): HEALPix resolution; maps are NESTED. (default: ``16``)
        num_maps (int): maps to generate. (default: ``1000``)
        rotate (str): ``"none"`` or ``"so3"``, see above. (default: ``"none"``)
        per_map (int): images a segmentation map. (default: ``3``)
        extent (float): half-width of the image on the tangent plane. (default: ``0.6``)
        projection (str): ``"stereographic"`` or ``"gnomonic"``. (default: ``"stereographic"``)
        threshold (float): intensity above which a pixel carries its image's label. (default: ``0.25``)
        seed (int): seed of the image choice and the placements. (default: ``0``)
        path (optional): a folder of images you downloaded, passed to
            :func:`~meshgdl.datasets.spherical_images.load_images`.

    Every map has ``x`` :math:`[N, 1]` (float16 intensities in [0, 1]), ``y`` (:math:`[1]` class, or
    :math:`[N]` labels), ``rotation`` :math:`[K, 3, 3]` (float64 placements), ``image_index``
    :math:`[K]` (rows of :func:`load_images`), ``digit`` :math:`[K]` (classes) and ``class_count``
    :math:`[1, L]` (classification: images per class; segmentation: pixels per label 0..C).
    :meth:`tensors` returns them stacked over maps.
    """

    def __init__(self, root, source: str = "mnist", split: str = "train", task: str = "classification",
                 nside: int = 16, num_maps: int = 1000, rotate: str = "none", *, per_map: int = 3,
                 extent: float = 0.6, projection: str = "stereographic", threshold: float = 0.25,
                 seed: int = 0, path=None, transform=None, force_reload: bool = False, progress: bool = False):
        from ..geometry.healpix import check_nside

        if task not in ("classification", "segmentation"):
            raise ValueError(f"task must be 'classification' or 'segmentation', got {task!r}")
        if rotate not in ("none", "so3"):
            raise ValueError(f"rotate must be 'none' (NR) or 'so3' (R), got {rotate!r}")
        self.path = path
        params = dict(source=source, split=split, task=task, nside=check_nside(nside), num_maps=int(num_maps),
                      rotate=rotate, per_map=int(per_map) if task == "segmentation" else 1,
                      extent=float(extent), projection=projection, threshold=float(threshold), seed=int(seed))
        super().__init__(root, params, transform, None, None, force_reload, progress)

    def file_stem(self) -> str:
        p = self.params
        return f"spherical_{p['source']}_{p['split']}_{p['task']}_{p['rotate']}_nside{p['nside']}_n{p['num_maps']}"

    def generate(self) -> list:
        import healpy as hp
        from torch_geometric.data import Data

        from .spherical_images import (load_images, non_overlapping_placements, random_rotations, render_maps,
                                       support_radius)

        p = self.params
        images, labels = load_images(p["source"], p["split"], self.path)
        num_classes = 10
        rng = np.random.default_rng(p["seed"])
        k = p["per_map"]
        index = rng.choice(len(images), size=(p["num_maps"], k), replace=p["num_maps"] * k > len(images))
        if p["task"] == "classification":
            rotation = random_rotations(p["num_maps"], p["rotate"], rng)[:, None]
        else:
            kind = "upright" if p["rotate"] == "none" else "so3"
            rotation = non_overlapping_placements(p["num_maps"], k, kind,
                                                  support_radius(p["extent"], p["projection"]), rng)
        points = np.stack(hp.pix2vec(p["nside"], np.arange(12 * p["nside"] ** 2), nest=True), 1)
        data_list = []
        for start in range(0, p["num_maps"], 64):
            sl = slice(start, start + 64)
            x, label = render_maps(images[index[sl]], labels[index[sl]], rotation[sl], points,
                                   extent=p["extent"], projection=p["projection"], threshold=p["threshold"])
            for m in range(len(x)):
                i = start + m
                digit = torch.from_numpy(labels[index[i]])
                if p["task"] == "classification":
                    y, count = digit, torch.bincount(digit, minlength=num_classes)
                else:
                    y = torch.from_numpy(label[m])
                    count = torch.bincount(y, minlength=num_classes + 1)
                data_list.append(Data(x=torch.from_numpy(x[m]).to(torch.float16)[:, None], y=y,
                                      rotation=torch.from_numpy(rotation[i]), image_index=torch.from_numpy(index[i]),
                                      digit=digit, class_count=count[None]))
        return data_list

    def tensors(self) -> dict:
        """Every map stacked: ``x [M, N, 1]`` float32, ``y`` (``[M]`` or ``[M, N]``), ``rotation
        [M, K, 3, 3]``, ``image_index [M, K]``, ``digit [M, K]``, ``class_count [M, L]``."""
        data, m = self._data, len(self)
        out = {"x": data.x.float().view(m, -1, 1), "rotation": data.rotation.view(m, -1, 3, 3),
               "image_index": data.image_index.view(m, -1), "digit": data.digit.view(m, -1),
               "class_count": data.class_count}
        out["y"] = data.y if self.params["task"] == "classification" else data.y.view(m, -1)
        return out

    def class_counts(self) -> torch.Tensor:
        """Images per class (classification) or pixels per label 0..C (segmentation), over all maps."""
        return self._data.class_count.sum(0)

    def __repr__(self) -> str:
        p = self.params
        return (f"{type(self).__name__}({len(self)}, {p['source']} {p['split']}, {p['task']}, nside={p['nside']}, "
                f"rotate={p['rotate']!r})")
