r"""One-line equivariance checks, run in float64, usable on any module ``module(x, graph)``.

Each check transforms the input, runs the module twice, compares, raises ``AssertionError`` when
the relative error :math:`\max|y' - T y| / \max|T y|` exceeds ``rtol``, and returns that error.
A module output with one row per node is checked for equivariance; any other output (one row per
graph, after global pooling) for invariance. The module is deep-copied and cast to float64, so the
caller's module is left untouched (a plain function ``f(x, graph)`` works too), and a fixed ``seed`` makes the random transformation
reproducible.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import Tensor

from ..graph import gauge_transform, permute_nodes, wrap_angle


def _double(graph):
    out = graph.clone()
    for key, value in graph.items():
        if isinstance(value, Tensor) and value.is_floating_point():
            out[key] = value.double()
    return out


def _setup(module, x, graph):
    if isinstance(module, torch.nn.Module):
        module = copy.deepcopy(module).double()
    if x.shape[0] != graph.num_nodes:
        raise ValueError(f"x has {x.shape[0]} rows but the graph has {graph.num_nodes} nodes")
    return module, x.detach().double(), _double(graph)


def _node_level(out: Tensor, graph) -> bool:
    return out.shape[0] == graph.num_nodes


def _compare(actual: Tensor, expected: Tensor, rtol: float, what: str) -> float:
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: output shapes differ, {list(actual.shape)} vs {list(expected.shape)}")
    scale = expected.abs().max().clamp_min(1e-300)
    err = float((actual - expected).abs().max() / scale)
    if not err <= rtol:
        raise AssertionError(f"{what}: relative error {err:.3e} exceeds rtol={rtol:.1e}")
    return err


def _random_orthogonal(seed: int) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    return q if torch.linalg.det(q) > 0 else -q


@torch.no_grad()
def assert_permutation_equivariant(module, x: Tensor, graph, perm: Tensor | None = None, rtol: float = 1e-10,
                                   seed: int = 0) -> float:
    r"""Relabel the nodes by ``perm`` (random by default): node-level outputs must follow,
    :math:`f(P x, P G) = P f(x, G)`; graph-level outputs must not change."""
    module, x, graph = _setup(module, x, graph)
    if perm is None:
        perm = torch.randperm(graph.num_nodes, generator=torch.Generator().manual_seed(seed))
    out = module(x, graph)
    moved = module(x[perm], permute_nodes(graph, perm))
    expected = out[perm] if _node_level(out, graph) else out
    return _compare(moved, expected, rtol, "permutation equivariance")


@torch.no_grad()
def assert_gauge_equivariant(module, x: Tensor, graph, in_type, out_type=None, angles: Tensor | None = None,
                             rtol: float = 1e-10, seed: int = 0) -> float:
    r"""Turn every frame by ``angles`` (uniform in :math:`[0, 2\pi)` by default):
    :math:`f(\rho_\text{in}(-p) x, G^p) = \rho_\text{out}(-p) f(x, G)`.

    ``out_type`` (a :class:`~meshgdl.FieldType`) describes node-level outputs; ``None`` means
    gauge-invariant outputs (scalars, or one row per graph).
    """
    module, x, graph = _setup(module, x, graph)
    if angles is None:
        gen = torch.Generator().manual_seed(seed)
        angles = 2 * math.pi * torch.rand(graph.num_nodes, generator=gen, dtype=torch.float64)
    angles = torch.as_tensor(angles, dtype=torch.float64)
    out = module(x, graph)
    moved = module(in_type.transform(x, angles), gauge_transform(graph, angles))
    expected = out
    if out_type is not None and _node_level(out, graph):
        expected = out_type.transform(out, angles)
    return _compare(moved, expected, rtol, "gauge equivariance")


@torch.no_grad()
def assert_rotation_invariant(module, x: Tensor, graph, build=None, rotation: Tensor | None = None,
                              rtol: float = 1e-10, seed: int = 0) -> float:
    r"""Rotate the embedding by ``rotation`` (a random :math:`Q \in SO(3)` by default) and rebuild
    the graph: the outputs must not change, since frames turn with the input and features live in
    the frames.

    The graph is built by ``build`` (a function ``pos -> FramedGraph``, required) from the original
    and from the rotated positions, so the check tests the builder with the layer: a builder whose
    frames follow a fixed global axis changes the gauge under a rotation and fails here for
    non-scalar outputs. Builders run with float64 as the default dtype.

    Raises:
        TypeError: without ``build``. Rotating ``pos`` and ``frame`` alone changes nothing that a
            framed layer reads (log maps and transports are frame coordinates), so the check could
            not fail.
    """
    if build is None:
        raise TypeError(
            "assert_rotation_invariant needs build, a function pos -> FramedGraph that rebuilds the graph "
            "from rotated positions: rotating pos and frame alone leaves edge_logmap and edge_transport, "
            "which the layers read, unchanged, so the check could not fail. Pass the builder, e.g. "
            "build=lambda pos: mesh_graph(pos, faces, cache=False)")
    q = _random_orthogonal(seed) if rotation is None else torch.as_tensor(rotation, dtype=torch.float64)
    module, x, graph = _setup(module, x, graph)
    # builders follow the default dtype (mesh_graph does): build in float64 like the rest
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        graph, rotated = _double(build(graph.pos)), _double(build(graph.pos @ q.T))
    finally:
        torch.set_default_dtype(previous)
    return _compare(module(x, rotated), module(x, graph), rtol, "rotation invariance")


@torch.no_grad()
def assert_symmetry_equivariant(module, x: Tensor, graph, perm: Tensor, angles: Tensor, in_type, out_type=None,
                                rtol: float = 1e-10, graph_atol: float = 1e-9) -> float:
    r"""An exact symmetry of the domain: a node permutation together with gauge angles.

    The pair must map the graph onto itself, ``gauge_transform(permute_nodes(graph, perm), angles)
    == graph`` (checked first, ``ValueError`` otherwise). The symmetry moves a field as
    :math:`x'_k = \rho_\text{in}(-p_k)\, x_{\pi(k)}`, and the check is
    :math:`f(x', G) = \rho_\text{out}(-p)\, f(x, G)_\pi`. Example: a 90 degree rotation of an image
    on a grid whose frames all point along the axes (``perm`` sends each pixel to its preimage, every
    angle is :math:`\pm\pi/2`).
    """
    module, x, graph = _setup(module, x, graph)
    perm = torch.as_tensor(perm, dtype=torch.long)
    angles = torch.as_tensor(angles, dtype=torch.float64)
    _check_symmetry(graph, perm, angles, graph_atol)
    out = module(x, graph)
    moved = module(in_type.transform(x[perm], angles), graph)
    if _node_level(out, graph):
        expected = out[perm] if out_type is None else out_type.transform(out[perm], angles)
    else:
        expected = out
    return _compare(moved, expected, rtol, "symmetry equivariance")


def _check_symmetry(graph, perm: Tensor, angles: Tensor, atol: float):
    moved = gauge_transform(permute_nodes(graph, perm), angles)
    try:
        ids = graph.edge_id(moved.edge_index[0], moved.edge_index[1])
    except KeyError as err:
        raise ValueError(f"perm is not a symmetry of the graph: it maps an edge to a non-edge ({err})") from None
    errors = {
        "edge_logmap": (moved.edge_logmap - graph.edge_logmap[ids]).abs().max(),
        "edge_transport": wrap_angle(moved.edge_transport - graph.edge_transport[ids]).abs().max(),
    }
    if "edge_weight" in graph and graph.edge_weight is not None:
        errors["edge_weight"] = (moved.edge_weight - graph.edge_weight[ids]).abs().max()
    for key, err in errors.items():
        if float(err) > atol:
            raise ValueError(
                f"(perm, angles) is not a symmetry of the graph: {key} differs by {float(err):.2e}; check "
                "the direction of perm (node k of the image comes from node perm[k]) and the sign of angles"
            )
