"""A cached PyG data set of Ising configurations on lattice graphs."""
from __future__ import annotations

import torch

from .generated import GeneratedDataset


class IsingDataset(GeneratedDataset):
    r"""Ising spins sampled at several temperatures (:func:`ising_metropolis`), one lattice graph
    (:func:`meshgdl.geometry.lattice_graph` with identity links) per configuration, generated once
    and cached in ``root/processed`` under a name that encodes every generation parameter.

    Args:
        root (str): the folder of the cache.
        shape (tuple of int): the lattice, even extents. (default: ``(16, 16)``)
        temperatures (sequence of float): the temperatures. (default: ``(1.5, 2.0, 2.5, 3.0, 3.5)``)
        num_configs (int): configurations per temperature. (default: ``100``)
        n_therm, n_decor, chains, seed: passed to :func:`ising_metropolis` (defaults: ``500``,
            ``5``, ``4``, ``0``; temperature ``t`` uses seed ``seed + t``).
        transform, pre_transform, pre_filter, force_reload: as in PyG's ``InMemoryDataset``.
        progress (bool): show a progress bar while generating. (default: ``True``)

    Every graph has ``x`` :math:`[N, 1]` (the spins as floats), ``y`` :math:`[1]` (1 in the
    ordered phase :math:`T < T_c`, else 0), ``temperature`` :math:`[1]`, ``pos``, ``edge_index``,
    ``edge_direction``, ``edge_reverse`` and ``lattice_shape``.
    """

    def __init__(self, root, shape=(16, 16), temperatures=(1.5, 2.0, 2.5, 3.0, 3.5),
                 num_configs: int = 100, *, n_therm: int = 500, n_decor: int = 5, chains: int = 4,
                 seed: int = 0, transform=None, pre_transform=None, pre_filter=None,
                 force_reload: bool = False, progress: bool = True):
        params = dict(shape=tuple(int(s) for s in shape), temperatures=tuple(float(t) for t in temperatures),
                      num_configs=int(num_configs), n_therm=n_therm, n_decor=n_decor, chains=chains, seed=seed)
        super().__init__(root, params, transform, pre_transform, pre_filter, force_reload, progress)

    def file_stem(self) -> str:
        p = self.params
        return f"ising_{'x'.join(map(str, p['shape']))}_n{p['num_configs']}"

    def generate(self) -> list:
        from ..geometry.lattice import lattice_graph
        from .ising import ISING_CRITICAL_TEMPERATURE, ising_metropolis

        p = self.params
        template = lattice_graph(p["shape"])
        del template.link, template.gauge_group  # spins need the neighbours, not links
        data_list = []
        for t, temperature in enumerate(p["temperatures"]):
            spins = ising_metropolis(p["shape"], temperature, p["num_configs"], n_therm=p["n_therm"],
                                     n_decor=p["n_decor"], chains=p["chains"], seed=p["seed"] + t,
                                     progress=self.progress)
            for s in spins:
                graph = template.clone()
                graph.x = s.flatten().to(torch.get_default_dtype())[:, None]
                graph.y = torch.tensor([int(temperature < ISING_CRITICAL_TEMPERATURE)])
                graph.temperature = torch.tensor([temperature], dtype=torch.float64)
                data_list.append(graph)
        return data_list

    def __repr__(self) -> str:
        p = self.params
        return f"{type(self).__name__}({len(self)}, shape={p['shape']}, temperatures={p['temperatures']})"
