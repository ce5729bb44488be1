"""The graph file format behind :meth:`FramedGraph.save` and :meth:`FramedGraph.load`.

A graph file is a ``torch.save`` zip archive of one dict of plain objects, readable with
``torch.load(weights_only=True)``::

    {"format": "meshgdl.FramedGraph", "version": 2, "tensors": {name: Tensor}, "meta": {name: plain},
     "checksum": "sha256:<hex>"}

``checksum`` (format version 2) is :func:`graph_checksum` of the tensors and meta; ``torch.load`` never
checks the zip's own CRCs, so without it flipped bytes in tensor data load silently. Version 1
files have no checksum and are still read, unverified.
"""
from __future__ import annotations

import hashlib
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import Tensor

from ._files import atomic_write

FORMAT = "meshgdl.FramedGraph"
FORMAT_VERSION = 2
_ZIP_MAGIC = b"PK\x03\x04"
_CHUNK = 1 << 24  # bytes hashed by one thread at a time


class GraphFileError(ValueError):
    """A file that is not a readable meshgdl graph file: empty, truncated, damaged, of another
    kind, or written by a newer meshgdl. ``path`` is the file."""

    def __init__(self, path, reason: str):
        self.path = Path(path)
        super().__init__(f"{path} {reason}")


def _digest(chunk) -> bytes:
    return hashlib.sha256(chunk).digest()


def graph_checksum(tensors: dict, meta: dict) -> str:
    """``"sha256:<hex>"``: SHA-256 over, for every tensor in name order, its name, dtype and shape
    followed by the SHA-256 digests of its bytes in 16 MiB chunks, and then the ``repr`` of the plain
    attributes.

    The chunks are hashed in place (no copy of contiguous CPU tensors) by several threads at once
    (``hashlib`` releases the GIL), so that verifying a large graph runs near memory speed.
    """
    headers, chunks, counts = [], [], []
    for key in sorted(tensors):
        t = tensors[key]
        if t.layout != torch.strided:  # sparse: hash its dense form; rare and small in practice
            t = t.to_dense()
        t = t.detach().cpu().resolve_conj().resolve_neg().contiguous()  # views of conjugates have no bytes of their own
        headers.append(f"{key}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        data = memoryview(t.reshape(-1).view(torch.uint8).numpy()) if t.numel() else memoryview(b"")
        parts = [data[i:i + _CHUNK] for i in range(0, len(data), _CHUNK)]
        chunks += parts
        counts.append(len(parts))
    if len(chunks) > 1:
        with ThreadPoolExecutor(min(len(chunks), os.cpu_count() or 1, 16)) as pool:
            digests = iter(list(pool.map(_digest, chunks)))
    else:
        digests = iter(map(_digest, chunks))
    h = hashlib.sha256()
    for header, count in zip(headers, counts):
        h.update(header)
        for _ in range(count):
            h.update(next(digests))
    h.update(repr(sorted(meta.items())).encode())
    return "sha256:" + h.hexdigest()


def save_graph(graph, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``graph``'s tensors and plain attributes to ``path`` (see the module docstring)."""
    tensors, meta = {}, {}
    for key, value in graph.items():
        if isinstance(value, Tensor):
            tensors[key] = value.detach().cpu()
        elif _is_plain(value):
            meta[key] = value
        else:
            raise TypeError(
                f"attribute {key!r} of type {type(value).__name__} cannot be saved safely; "
                "store it as a tensor, number, string, or a list/tuple/dict of those"
            )
    payload = {"format": FORMAT, "version": FORMAT_VERSION, "tensors": tensors, "meta": meta,
               "checksum": graph_checksum(tensors, meta)}
    with atomic_write(path, overwrite) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def _is_plain(value) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    # torch appends paragraphs of advice after the first sentence; keep the message one line
    return f"{type(err).__name__}: {text[0].split('. ')[0][:200]}" if text else type(err).__name__


def load_graph_payload(path: str | os.PathLike, map_location=None) -> tuple[dict, dict]:
    """Read and verify a graph file: ``(tensors, meta)``, or :class:`GraphFileError`.

    ``OSError`` from opening the file (missing, a folder, no permission) passes through unchanged.
    """
    with open(path, "rb") as f:
        head = f.read(len(_ZIP_MAGIC))
        if not head:
            raise GraphFileError(path, "is empty, not a meshgdl graph file (an interrupted copy?)")
        f.seek(0)
        # verify on the CPU, then move: hashing tensors that were loaded onto a GPU would copy them back
        move = map_location is not None and isinstance(map_location, (str, torch.device))
        try:
            payload = torch.load(f, map_location="cpu" if move else map_location, weights_only=True)
        except Exception as err:  # torch raises anything from EOFError to KeyError on bad bytes
            if not _ZIP_MAGIC.startswith(head):
                raise GraphFileError(path, f"is not a meshgdl graph file: not a torch file (it starts with {head!r})") from None
            if isinstance(err, pickle.UnpicklingError):  # weights_only refused an object it does not know
                raise GraphFileError(path, "is not a meshgdl graph file: torch will not load its objects safely (a "
                                           "torch file of another kind, e.g. a saved module, or a truncated or damaged "
                                           f"one; {_first_line(err)}); write graphs with FramedGraph.save") from None
            raise GraphFileError(path, f"is truncated or damaged: torch cannot read it ({_first_line(err)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        kind = f"a dict with keys {sorted(map(str, payload))[:5]}" if isinstance(payload, dict) else f"a {type(payload).__name__}"
        raise GraphFileError(path, f"is not a meshgdl graph file: a torch file of another kind (it holds {kind}); "
                                   "write graphs with FramedGraph.save")
    version = payload.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise GraphFileError(path, f"is damaged: its format version is {version!r}, not a positive integer")
    if version > FORMAT_VERSION:
        raise GraphFileError(path, f"was written by a newer meshgdl (format {version}, this one reads up to "
                                   f"{FORMAT_VERSION}); upgrade meshgdl")
    tensors, meta = payload.get("tensors"), payload.get("meta")
    if not (isinstance(tensors, dict) and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in tensors.items())
            and isinstance(meta, dict) and all(isinstance(k, str) for k in meta)):
        raise GraphFileError(path, "is damaged: 'tensors' must map names to tensors and 'meta' names to values")
    if version >= 2 and "checksum" not in payload:
        raise GraphFileError(path, "is damaged: it has no checksum, which format 2 files always store")
    if version >= 2 and payload["checksum"] != graph_checksum(tensors, meta):
        raise GraphFileError(path, "is damaged: its tensors do not match the checksum stored when it was "
                                   "saved; write it again")
    if move:
        tensors = {key: value.to(map_location) for key, value in tensors.items()}
    return tensors, meta
