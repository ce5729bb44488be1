"""A cached PyG data set of Monte Carlo gauge fields on lattice graphs."""
from __future__ import annotations

import torch

from .. import groups
from .generated import GeneratedDataset


class LatticeGaugeDataset(GeneratedDataset):
    r"""Gauge fields sampled from the Wilson action (:func:`wilson_metropolis`), one lattice graph
    (:func:`meshgdl.geometry.lattice_graph`) per configuration, generated once and cached in
    ``root/processed`` under a name that encodes every generation parameter.

    Args:
        root (str): the folder of the cache.
        group (str): ``"U1"``, ``"SU2"``, ``"SU3"``, ... (default: ``"SU2"``)
        shape (tuple of int): the lattice, even extents. (default: ``(8, 8)``)
        beta (float): the inverse coupling. (default: ``2.0``)
        num_configs (int): the number of configurations. (default: ``100``)
        loop_sizes (tuple of (int, int)): traced Wilson loops stored as targets ``y``
            :math:`[N, len(loop\_sizes)]` (:func:`meshgdl.observables.traced_wilson_loops`).
            (default: ``()``, no targets)
        n_therm, n_decor, n_hits, chains, seed, update: passed to :func:`wilson_metropolis`
            (defaults: ``200``, ``10``, ``8``, ``8``, ``0``, ``"auto"``).
        dtype: complex dtype of the links. (default: ``torch.complex128``)
        transform, pre_transform, pre_filter, force_reload: as in PyG's ``InMemoryDataset``.
        progress (bool): show a progress bar while generating. (default: ``True``)

    Every graph has ``link``, ``edge_index``, ``edge_direction``, ``edge_reverse``, ``pos``,
    ``lattice_shape``, ``gauge_group``, ``beta`` :math:`[1]`, ``chain`` :math:`[1]` (the Markov
    chain it came from) and, with ``loop_sizes``, ``y``.
    """

    def __init__(self, root, group: str = "SU2", shape=(8, 8), beta: float = 2.0,
                 num_configs: int = 100, *, loop_sizes=(), n_therm: int = 200, n_decor: int = 10,
                 n_hits: int = 8, chains: int = 8, seed: int = 0, update: str = "auto",
                 dtype=torch.complex128,
                 transform=None, pre_transform=None, pre_filter=None, force_reload: bool = False,
                 progress: bool = True):
        groups.group_size(group)
        self.loop_sizes = tuple(tuple(int(a) for a in s) for s in loop_sizes)
        self.dtype = dtype
        params = dict(group=group, shape=tuple(int(s) for s in shape), beta=float(beta),
                      num_configs=int(num_configs), n_therm=n_therm, n_decor=n_decor, n_hits=n_hits,
                      chains=chains, seed=seed, update=update, loop_sizes=self.loop_sizes, dtype=str(dtype))
        super().__init__(root, params, transform, pre_transform, pre_filter, force_reload, progress)

    def file_stem(self) -> str:
        p = self.params
        return f"{p['group']}_{'x'.join(map(str, p['shape']))}_beta{p['beta']:g}_n{p['num_configs']}"

    def generate(self) -> list:
        from ..geometry.lattice import lattice_graph
        from ..observables import traced_wilson_loops
        from .lattice_gauge import wilson_metropolis

        p = self.params
        links = wilson_metropolis(p["group"], p["shape"], p["beta"], p["num_configs"],
                                  n_therm=p["n_therm"], n_decor=p["n_decor"], n_hits=p["n_hits"],
                                  chains=p["chains"], seed=p["seed"], update=p["update"],
                                  dtype=self.dtype,
                                  progress=self.progress)
        data_list = []
        for c, u in enumerate(links):
            graph = lattice_graph(p["shape"], group=p["group"], links=u, dtype=self.dtype)
            if self.loop_sizes:
                graph.y = torch.stack([traced_wilson_loops(u, s).flatten() for s in self.loop_sizes], -1)
            graph.beta = torch.tensor([p["beta"]], dtype=torch.float64)
            graph.chain = torch.tensor([c % p["chains"]])
            data_list.append(graph)
        return data_list

    def __repr__(self) -> str:
        p = self.params
        return f"{type(self).__name__}({len(self)}, group={p['group']}, shape={p['shape']}, beta={p['beta']:g})"
