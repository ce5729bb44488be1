"""Caching of geometry: in memory for the session, on disk under a hash of the input.

The disk cache lives in ``$MESHGDL_CACHE`` if set, else ``~/.cache/meshgdl``; change it with
:func:`set_cache_dir`. Entries are written atomically and never shared between different inputs,
because the key hashes every byte of the input and every parameter that changes the output.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

log = logging.getLogger("meshgdl")
_CACHE_DIR: Path | None = None
_MEMORY: "OrderedDict[str, object]" = OrderedDict()
_MEMORY_ENTRIES = 8


def cache_dir() -> Path:
    """The folder of the on-disk cache."""
    if _CACHE_DIR is not None:
        return _CACHE_DIR
    return Path(os.environ.get("MESHGDL_CACHE", Path.home() / ".cache" / "meshgdl"))


def set_cache_dir(path: str | os.PathLike | None) -> None:
    """Put the on-disk cache in ``path`` (``None`` restores the default)."""
    global _CACHE_DIR
    _CACHE_DIR = None if path is None else Path(path)


def content_hash(*arrays, **params) -> str:
    """SHA-256 of the arrays' dtypes, shapes and bytes and of the parameters, as hex."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a.detach().cpu().numpy() if hasattr(a, "detach") else a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    h.update(repr(sorted(params.items())).encode())
    return h.hexdigest()


def memory_get(key: str):
    if key in _MEMORY:
        _MEMORY.move_to_end(key)
        return _MEMORY[key]
    return None


def memory_put(key: str, value) -> None:
    _MEMORY[key] = value
    _MEMORY.move_to_end(key)
    while len(_MEMORY) > _MEMORY_ENTRIES:
        _MEMORY.popitem(last=False)


def clear_memory() -> None:
    """Forget every graph cached in memory (the disk cache stays)."""
    _MEMORY.clear()


def cached_graph(kind: str, key: str, build, use_disk: bool = True):
    """Return the graph cached under ``kind/key``, building and storing it with ``build()`` if absent."""
    from .graph import FramedGraph
    from .graph_io import GraphFileError

    hit = memory_get(key)
    if hit is not None:
        return hit.clone()
    path = cache_dir() / kind / f"{key}.pt"
    if use_disk and path.exists():
        try:
            graph = FramedGraph.load(path)
            memory_put(key, graph)
            return graph.clone()
        except (GraphFileError, OSError) as err:  # a damaged entry is rebuilt, never trusted
            log.warning("ignoring unreadable cache entry %s (%s)", path, err)
    graph = build()
    memory_put(key, graph)
    if use_disk:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            graph.save(path, overwrite=True)
        except OSError as err:
            log.warning("could not write the geometry cache at %s (%s); set MESHGDL_CACHE", path, err)
    return graph.clone()
