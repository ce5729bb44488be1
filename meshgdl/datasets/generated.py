"""The base of data sets made by simulation: generated once, cached under a hash of every parameter."""
from __future__ import annotations

import hashlib

import torch
from torch_geometric.data import InMemoryDataset

from ..graph import FramedGraph

# InMemoryDataset stores the data class; allow it in torch.load(weights_only=True)
torch.serialization.add_safe_globals([FramedGraph])


class GeneratedDataset(InMemoryDataset):
    """A PyG ``InMemoryDataset`` whose graphs come from :meth:`generate`, not from a download.

    The processed file is named ``<file_stem>_<hash>.pt``, the hash covering every entry of
    ``params``, so data sets with different parameters never share a cache file. Subclasses set
    ``params`` (a dict of plain values) through ``__init__`` and implement :meth:`file_stem` and
    :meth:`generate`.
    """

    def __init__(self, root, params: dict, transform=None, pre_transform=None, pre_filter=None,
                 force_reload: bool = False, progress: bool = True):
        self.params = params
        self.progress = progress
        super().__init__(root, transform, pre_transform, pre_filter, force_reload=force_reload)
        self.load(self.processed_paths[0])

    def file_stem(self) -> str:
        raise NotImplementedError

    def generate(self) -> list:
        raise NotImplementedError

    @property
    def raw_file_names(self):
        return []

    @property
    def processed_file_names(self):
        key = hashlib.sha256(repr(sorted(self.params.items())).encode()).hexdigest()[:12]
        return [f"{self.file_stem()}_{key}.pt"]

    def download(self):
        pass  # generated, nothing to download

    def process(self):
        data_list = self.generate()
        if self.pre_filter is not None:
            data_list = [g for g in data_list if self.pre_filter(g)]
        if self.pre_transform is not None:
            data_list = [self.pre_transform(g) for g in data_list]
        self.save(data_list, self.processed_paths[0])
