"""The framed graph: nodes with tangent frames, edges with log maps and parallel transport.

Sign conventions (stated once, in ``docs/architecture.md``, and tested in ``tests/test_graph.py``):

* ``frame[i]`` has rows ``(e1, e2, n)``: a right-handed orthonormal tangent frame and the normal.
* ``edge_index[0]`` is the source ``j``, ``edge_index[1]`` the target ``i``; messages flow j -> i.
* ``edge_logmap[e]`` are the coordinates, in i's frame, of the tangent vector at i that points along
  the geodesic to j, with the geodesic length as its norm.
* ``edge_transport[e] = a_ji``: a tangent vector with coordinates ``v`` in j's frame has coordinates
  ``R(a_ji) v`` in i's frame after parallel transport to i, ``R(a) = [[cos a, -sin a], [sin a, cos a]]``.
* Lattices carry ``link[e] = U_ij`` (a unitary matrix) in place of ``edge_transport``: a matrix
  feature ``F_j`` transported to i is ``U_ij F_j U_ij^dagger``.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torch import Tensor
from torch_geometric.data import Data

from .graph_io import load_graph_payload, save_graph

# Integer attributes that point at edges of the same graph: shifted by the number of edges in a batch.
EDGE_POINTERS = frozenset({"edge_reverse"})


class FramedGraph(Data):
    r"""A graph whose nodes carry tangent frames and whose edges carry parallel transport.

    A subclass of :class:`torch_geometric.data.Data`, so PyG's ``Batch``, ``DataLoader`` and
    transforms work unchanged.

    Shapes:
        - ``pos``: :math:`[N, 3]` (lattices: :math:`[N, d]` integer coordinates as floats)
        - ``frame``: :math:`[N, 3, 3]`, rows :math:`(e_1, e_2, n)`
        - ``edge_index``: :math:`[2, E]`, row 0 the source j, row 1 the target i
        - ``edge_logmap``: :math:`[E, 2]`, :math:`\log_{x_i}(x_j)` in i's frame
        - ``edge_transport``: :math:`[E]`, the angle :math:`a_{ji}`
        - ``link``: :math:`[E, n, n]` complex, the gauge link :math:`U_{ij}` (lattices)
        - optional ``edge_weight`` :math:`[E]`, ``node_area`` :math:`[N]`, ``face`` :math:`[3, F]`,
          ``edge_reverse`` :math:`[E]` (id of the edge i -> j)
    """

    def __inc__(self, key: str, value, *args, **kwargs):
        if key in EDGE_POINTERS:
            return self.num_edges
        return super().__inc__(key, value, *args, **kwargs)

    # ------------------------------------------------------------------ checks
    def validate(self) -> "FramedGraph":
        """Check shapes, dtypes, finiteness and frame orthonormality; raise ``ValueError`` if wrong.

        Returns the graph itself, so that builders can end with ``return graph.validate()``.
        """
        _validate(self)
        return self

    # ------------------------------------------------------------------ I/O
    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Save to ``path`` as plain tensors, loadable with ``torch.load(weights_only=True)``.

        Refuses to replace an existing file unless ``overwrite=True``, and checks that ``path`` is
        not a folder and that its folder exists before writing. The file is written to a temporary
        name beside ``path`` and moved into place, so a failed or interrupted save never leaves half
        a file. The file stores a SHA-256 checksum of the tensors that :meth:`load` verifies (format
        in :mod:`meshgdl.graph_io`).
        """
        return save_graph(self, path, overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike, map_location=None) -> "FramedGraph":
        """Load a graph written by :meth:`save` (uses ``torch.load(weights_only=True)``).

        Raises :class:`~meshgdl.GraphFileError` (a ``ValueError``) for every file that is not a
        readable graph file: empty, truncated, damaged (checksum mismatch), not a torch file, a torch
        file of another kind, or written by a newer meshgdl. Files of format version 1 (before the
        checksum) load unverified. ``OSError`` (no such file, permission denied) passes through.
        """
        tensors, meta = load_graph_payload(path, map_location)
        graph = cls()
        for key, value in {**tensors, **meta}.items():
            graph[key] = value
        return graph

    # ------------------------------------------------------------------ lookup
    def edge_id(self, src: Tensor, dst: Tensor, missing: int | None = None) -> Tensor:
        """Ids of the edges ``src -> dst`` (1-D tensors of equal length).

        A pair with no edge raises ``KeyError``, or gets the id ``missing`` when one is given.
        """
        n = self.num_nodes
        keys = self.edge_index[0] * n + self.edge_index[1]
        order = torch.argsort(keys)
        sorted_keys = keys[order]
        query = src.to(keys.device) * n + dst.to(keys.device)
        pos = torch.searchsorted(sorted_keys, query).clamp(max=len(keys) - 1)
        found = sorted_keys[pos] == query
        if missing is not None:
            return torch.where(found, order[pos], torch.full_like(pos, missing))
        if not bool(found.all()):
            k = int((~found).nonzero()[0])
            raise KeyError(f"no edge {int(src[k])} -> {int(dst[k])} in the graph")
        return order[pos]

    # ------------------------------------------------------------------ printing
    def summary(self) -> str:
        """A few lines describing the graph: sizes, degrees, edge lengths, curvature."""
        n, e = self.num_nodes, self.num_edges
        lines = [f"FramedGraph: {n:,} nodes, {e:,} edges"]
        if e:
            deg = torch.bincount(self.edge_index[1], minlength=n)
            lines.append(f"  in-degree   min {int(deg.min())}  mean {deg.float().mean():.2f}  max {int(deg.max())}")
        if "edge_logmap" in self and e:
            length = self.edge_logmap.double().norm(dim=-1)
            lines.append(f"  edge length min {length.min():.4g}  mean {length.mean():.4g}  max {length.max():.4g}")
        if "face" in self and self.face is not None:
            f = self.face.shape[1]
            n_edges = e // 2
            lines.append(f"  faces {f:,}  Euler characteristic V - E + F = {n - n_edges + f}")
        if "node_area" in self and self.node_area is not None:
            lines.append(f"  total area  {float(self.node_area.double().sum()):.6g}")
        if "link" in self and self.link is not None:
            lines.append(f"  links       {tuple(self.link.shape[1:])} {self.link.dtype}")
        attrs = ", ".join(f"{k}{list(v.shape)}" for k, v in self.items() if isinstance(v, Tensor))
        lines.append(f"  tensors     {attrs}")
        return "\n".join(lines)


# ---------------------------------------------------------------------- gauge actions
def rotation_matrix(angle: Tensor) -> Tensor:
    """``R(a) = [[cos a, -sin a], [sin a, cos a]]`` for every angle: ``[...]`` -> ``[..., 2, 2]``."""
    c, s = torch.cos(angle), torch.sin(angle)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def rotate_frames(frame: Tensor, angle: Tensor) -> Tensor:
    """Turn each frame by ``angle``: ``e1' = cos p e1 + sin p e2``, ``e2' = -sin p e1 + cos p e2``."""
    c, s = torch.cos(angle)[:, None], torch.sin(angle)[:, None]
    e1, e2, n = frame[:, 0], frame[:, 1], frame[:, 2]
    return torch.stack([c * e1 + s * e2, -s * e1 + c * e2, n], dim=1)


def gauge_transform(graph: FramedGraph, angles: Tensor, field_type=None) -> FramedGraph:
    r"""The same graph seen in frames turned by ``angles``; the input graph is left unchanged.

    For tangent frames, ``angles`` is :math:`[N]` (the angle :math:`p_i` of each node) and

    .. math::
        \log' = R(-p_i) \log, \qquad a_{ji}' = a_{ji} - p_i + p_j.

    For lattices (graphs with ``link``), ``angles`` is :math:`[N, n, n]`: a group element
    :math:`W_x` at each site, and :math:`U_{ij}' = W_i U_{ij} W_j^\dagger`.

    Node features ``graph.x`` are transformed by ``field_type`` (a :class:`meshgdl.FieldType`)
    when it is given, and left as they are (scalars, or matrices when there is no field type on a
    lattice, which transform as :math:`W F W^\dagger`) otherwise.
    """
    out = graph.clone()
    n = graph.num_nodes
    if "link" in graph and graph.link is not None:
        w = angles
        if w.shape != (n,) + tuple(graph.link.shape[1:]):
            raise ValueError(f"lattice gauge transformation must have shape {[n, *graph.link.shape[1:]]}, got {list(w.shape)}")
        w = w.to(graph.link.dtype)
        j, i = graph.edge_index
        out.link = w[i] @ graph.link @ w[j].conj().transpose(-1, -2)
        if "x" in graph and graph.x is not None:
            x = graph.x
            out.x = w[:, None] @ x @ w[:, None].conj().transpose(-1, -2) if x.is_complex() and x.dim() == 4 else x
        return out
    if angles.shape != (n,):
        raise ValueError(f"gauge angles must have shape [{n}] (one per node), got {list(angles.shape)}")
    p = angles.to(graph.frame.dtype)
    j, i = graph.edge_index
    if "frame" in graph:
        out.frame = rotate_frames(graph.frame, p)
    if "edge_logmap" in graph:
        out.edge_logmap = (rotation_matrix(-p[i]) @ graph.edge_logmap.unsqueeze(-1)).squeeze(-1)
    if "edge_transport" in graph:
        out.edge_transport = graph.edge_transport - p[i] + p[j]
    if field_type is not None and "x" in graph:
        out.x = field_type.transform(graph.x, p)
    return out


def permute_nodes(graph: FramedGraph, perm: Tensor) -> FramedGraph:
    """Relabel nodes: node ``k`` of the result is node ``perm[k]`` of ``graph``.

    Node attributes are gathered with ``perm``; ``edge_index`` and ``face`` are renumbered; edge
    attributes keep their order.
    """
    n = graph.num_nodes
    perm = torch.as_tensor(perm, dtype=torch.long)
    if perm.shape != (n,) or not torch.equal(torch.sort(perm).values, torch.arange(n)):
        raise ValueError(f"perm must be a permutation of range({n})")
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(n)
    out = graph.clone()
    for key, value in graph.items():
        if not isinstance(value, Tensor):
            continue
        if key in ("edge_index", "face"):
            out[key] = inverse.to(value.device)[value]
        elif graph.is_node_attr(key) and value.shape[:1] == (n,):
            out[key] = value[perm.to(value.device)]
    return out


# ---------------------------------------------------------------------- validation
def _fail(msg: str):
    raise ValueError(f"invalid FramedGraph: {msg}")


def _check_float(graph, key, shape):
    value = graph[key]
    if not isinstance(value, Tensor) or not value.is_floating_point():
        _fail(f"{key} must be a floating-point tensor, got {type(value).__name__} {getattr(value, 'dtype', '')}")
    if len(value.shape) != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape)):
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        _fail(f"{key} must have shape {want}, got {list(value.shape)}")
    if not all_finite(value):
        bad = (~torch.isfinite(value)).reshape(value.shape[0], -1).any(-1).nonzero()[0, 0]
        _fail(f"{key} has NaN or infinite values (first at row {int(bad)})")


def all_finite(value: Tensor) -> bool:
    """Whether every entry of a floating tensor is finite.

    NaN and infinity carry through a sum, so a finite sum proves all entries finite; summing is
    about twenty times faster than ``torch.isfinite(value).all()`` on CPU, which decides only the
    rare case of a sum that overflows.
    """
    return bool(torch.isfinite(value.sum())) or bool(torch.isfinite(value).all())


def _tolerance(dtype) -> float:
    return 1e-9 if dtype == torch.float64 else 1e-4


# What each required attribute is, for the message when it is missing.
_REQUIRED = {
    "edge_index": "[2, E] long: row 0 the source j, row 1 the target i",
    "frame": "[N, 3, 3]: rows e1, e2, n of each node's frame",
    "edge_logmap": "[E, 2]: log map of the source in the target's frame",
    "edge_transport": "[E]: transport angle a_ji",
}


def _require(graph, key: str):
    if key not in graph or graph[key] is None:  # PyG reads a missing edge_index as None
        _fail(f"{key} is missing (the builders in meshgdl.geometry set it; a graph made by hand needs "
              f"{key} {_REQUIRED[key]})")


def _validate(graph: FramedGraph):
    n = graph.num_nodes
    if n is None:
        _fail("num_nodes is missing (the builders in meshgdl.geometry set pos; a graph made by hand needs "
              "pos [N, 3] or num_nodes)")
    if n == 0:
        _fail("the graph has no nodes")
    _require(graph, "edge_index")
    ei = graph.edge_index
    if ei.dtype != torch.long or ei.dim() != 2 or ei.shape[0] != 2:
        _fail(f"edge_index must be a long tensor of shape [2, E], got {ei.dtype} {list(ei.shape)}")
    e = ei.shape[1]
    if e and (int(ei.min()) < 0 or int(ei.max()) >= n):
        _fail(f"edge_index points outside the {n} nodes (range {int(ei.min())}..{int(ei.max())})")
    lattice = "link" in graph and graph.link is not None
    if "pos" in graph and graph.pos is not None:
        _check_float(graph, "pos", (n, None if lattice else 3))
    if lattice:
        link = graph.link
        if not link.is_complex() or link.dim() != 3 or link.shape[0] != e or link.shape[1] != link.shape[2]:
            _fail(f"link must be a complex tensor of shape [E, n, n], got {link.dtype} {list(link.shape)}")
        eye = torch.eye(link.shape[1], dtype=link.dtype, device=link.device)
        err = (link @ link.conj().transpose(-1, -2) - eye).abs().amax() if e else 0.0
        if float(err) > 100 * _tolerance(link.real.dtype):
            _fail(f"links are not unitary (max |U U^dagger - 1| = {float(err):.2e}); project them onto the group")
        return
    for key in ("frame", "edge_logmap", "edge_transport"):
        _require(graph, key)
    _check_float(graph, "frame", (n, 3, 3))
    f = graph.frame
    tol = 100 * _tolerance(f.dtype)
    gram = f @ f.transpose(-1, -2)
    gram -= torch.eye(3, dtype=f.dtype, device=f.device)
    # one global maximum first; the per-node errors only to name the nodes that fail
    if len(f) and float(gram.abs().max()) > tol:
        err = gram.abs().flatten(1).amax(dim=1)
        _fail(f"frames are not orthonormal at {int((err > tol).sum())} nodes (first: {int(err.argmax())}, error {float(err.max()):.2e})")
    # the determinant of rows e1, e2, n is (e1 x e2) . n; LU-based det is several times slower
    det = torch.einsum("na,na->n", torch.linalg.cross(f[:, 0], f[:, 1]), f[:, 2])
    if bool((det < 0).any()):
        _fail(f"frames are left-handed at {int((det < 0).sum())} nodes (first: {int((det < 0).nonzero()[0, 0])}); use n = e1 x e2")
    _check_float(graph, "edge_logmap", (e, 2))
    _check_float(graph, "edge_transport", (e,))
    if "edge_weight" in graph and graph.edge_weight is not None:
        _check_float(graph, "edge_weight", (e,))
    if "node_area" in graph and graph.node_area is not None:
        _check_float(graph, "node_area", (n,))


def wrap_angle(angle: Tensor, inplace: bool = False) -> Tensor:
    """Map angles to ``(-pi, pi]``; with ``inplace``, overwrite and return ``angle`` (no temporaries)."""
    if not inplace:
        return math.pi - torch.remainder(math.pi - angle, 2 * math.pi)
    # -a + pi rounds exactly as pi - a: the same values as above
    return angle.neg_().add_(math.pi).remainder_(2 * math.pi).neg_().add_(math.pi)
