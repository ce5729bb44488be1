r"""Periodic hypercubic lattices with gauge links, as framed graphs.

Sites are numbered in row-major order over ``shape``; ``pos`` holds their integer coordinates.
The physics link :math:`U_{x,\mu}` is the parallel transport from :math:`x+\hat\mu` to :math:`x`:
it lives on the edge with source :math:`x+\hat\mu` and target :math:`x` (``link[e]`` = :math:`U_{ij}`
on edge j -> i, so a matrix feature at :math:`x+\hat\mu` arrives at :math:`x` as
:math:`U_{x,\mu} F U_{x,\mu}^\dagger`), and the reverse edge carries :math:`U_{x,\mu}^\dagger`.

``edge_direction[e]`` is the displacement from the target to the source: ``mu`` when the source is
:math:`x+\hat\mu` (the edge carries :math:`U_{x,\mu}`) and ``d + mu`` when it is
:math:`x-\hat\mu` (the edge carries :math:`U_{x-\hat\mu,\mu}^\dagger`). Edges are stored in blocks of
one direction, each block ordered by target site: edge ``k * N + x`` has direction ``k`` and target
``x``.

Extents of 1 or 2 are allowed and make self-loops or pairs of parallel edges; the tools that go by
direction (:func:`lattice_steps`, :func:`path_product`, :mod:`meshgdl.observables`, the lattice
layers) handle them, while lookups by node pairs (``FramedGraph.edge_id``,
:func:`~meshgdl.geometry.loop_holonomy`) are ambiguous there.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import groups
from ..graph import FramedGraph


def lattice_graph(shape, *, group: str = "U1", links=None, dtype=torch.complex128,
                  generator: torch.Generator | None = None) -> FramedGraph:
    r"""A periodic hypercubic lattice in :math:`d` = ``len(shape)`` dimensions with gauge links.

    Args:
        shape (tuple of int): the lattice extent in each direction, every entry at least 1.
        group (str): ``"U1"``, ``"SU2"``, ``"SU3"`` or ``"SU<n>"``. (default: ``"U1"``)
        links: ``None`` (every link the identity), ``"random"`` (Haar-random links, drawn with
            ``generator``), or a complex tensor :math:`U_{x,\mu}` of shape
            :math:`[*shape, d, n, n]` or :math:`[N, d, n, n]`. (default: ``None``)
        dtype: complex dtype of the links. (default: ``torch.complex128``)
        generator (torch.Generator, optional): the random source for ``links="random"``.

    Returns:
        A :class:`~meshgdl.FramedGraph` with ``pos`` :math:`[N, d]`, ``edge_index`` :math:`[2, 2dN]`,
        ``link`` :math:`[2dN, n, n]`, ``edge_direction`` :math:`[2dN]`, ``edge_reverse``
        :math:`[2dN]`, ``lattice_shape`` (tuple) and ``gauge_group`` (str). Read the links back as
        :math:`[N, d, n, n]` with :func:`lattice_links`.
    """
    shape = _check_shape(shape)
    n = groups.group_size(group)
    if dtype not in (torch.complex64, torch.complex128):
        raise TypeError(f"dtype must be torch.complex64 or torch.complex128, got {dtype}")
    d, num = len(shape), math.prod(shape)
    u = _links_tensor(links, shape, group, n, dtype, generator).reshape(num, d, n, n)

    site = torch.arange(num).view(shape)
    plus = torch.stack([site.roll(-1, mu).flatten() for mu in range(d)])   # [d, N]: x + mu
    minus = torch.stack([site.roll(1, mu).flatten() for mu in range(d)])   # [d, N]: x - mu
    target = torch.arange(num).repeat(2 * d)
    source = torch.cat([plus.flatten(), minus.flatten()])
    direction = torch.arange(2 * d).repeat_interleave(num)
    mu = torch.arange(d)[:, None]
    forward = u.transpose(0, 1)                                            # [d, N, n, n]
    backward = u[minus, mu].conj().transpose(-1, -2)                       # U_{x-mu,mu}^dagger
    reverse = torch.cat([((d + mu) * num + plus).flatten(), (mu * num + minus).flatten()])

    coords = torch.stack(torch.unravel_index(torch.arange(num), shape), dim=-1)
    graph = FramedGraph(
        pos=coords.to(torch.empty((), dtype=dtype).real.dtype),
        edge_index=torch.stack([source, target]),
        link=torch.cat([forward, backward]).reshape(2 * d * num, n, n),
        edge_direction=direction,
        edge_reverse=reverse,
        lattice_shape=shape,
        gauge_group=group,
        num_nodes=num,
    )
    return graph.validate()


def lattice_links(graph: FramedGraph) -> Tensor:
    r"""The links :math:`U_{x,\mu}` of a lattice graph (or a batch of them) as :math:`[N, d, n, n]`.

    Reshape to :math:`[*shape, d, n, n]` with ``graph.lattice_shape`` for a single lattice.
    """
    direction = _edge_direction(graph)
    d = _dimension(graph)
    keep = direction < d
    _, i = graph.edge_index
    n = graph.link.shape[-1]
    out = graph.link.new_zeros(graph.num_nodes, d, n, n)
    out[i[keep], direction[keep]] = graph.link[keep]
    return out


def lattice_steps(graph: FramedGraph) -> tuple[Tensor, Tensor]:
    r"""One-step neighbours and transports for every direction: ``(neighbour, step_link)``.

    ``neighbour[k, x]`` is the site one step from :math:`x` in direction ``k`` (encoding of
    ``edge_direction``) and ``step_link[k, x]`` the link of the edge from it to :math:`x`
    (:math:`U_{x,\mu}` for ``k = mu``, :math:`U_{x-\hat\mu,\mu}^\dagger` for ``k = d + mu``).
    Shapes :math:`[2d, N]` and :math:`[2d, N, n, n]`; works on batches of lattices.
    """
    direction = _edge_direction(graph)
    d = _dimension(graph)
    num = graph.pos.shape[0] if graph.get("pos") is not None else graph.num_nodes  # a shape compiles, num_nodes does not
    j, i = graph.edge_index
    neighbour = j.new_full((2 * d, num), -1)
    neighbour[direction, i] = j
    # the check reads the data, so it runs eagerly only; a compiled model trusts its input
    if not torch.compiler.is_compiling() and (bool((neighbour < 0).any()) or direction.numel() != 2 * d * num):
        raise ValueError("not a lattice graph: every site needs exactly one incoming edge per "
                         "direction; build it with meshgdl.geometry.lattice_graph")
    step_link = graph.link.new_empty(2 * d, num, *graph.link.shape[1:])
    step_link[direction, i] = graph.link
    return neighbour, step_link


def path_product(graph: FramedGraph, directions, steps: tuple[Tensor, Tensor] | None = None) -> Tensor:
    r"""Ordered product of links along the path from every site: :math:`[N, n, n]`.

    For ``directions`` :math:`(k_1, \dots, k_m)` (encoding of ``edge_direction``) the path visits
    :math:`x_0 = x, x_1 = x_0 + \hat k_1, \dots` and the product is
    :math:`U_{x_0 x_1} U_{x_1 x_2} \cdots U_{x_{m-1} x_m}`, as in
    :func:`~meshgdl.geometry.loop_holonomy`; it transports a matrix feature from :math:`x_m` to
    :math:`x` as :math:`P F P^\dagger`. ``steps`` reuses the output of :func:`lattice_steps`.
    """
    neighbour, step_link = steps if steps is not None else lattice_steps(graph)
    directions = [int(k) for k in directions]
    if not directions or min(directions) < 0 or max(directions) >= neighbour.shape[0]:
        raise ValueError(f"directions must be a non-empty list of ints in 0..{neighbour.shape[0] - 1}")
    out = step_link[directions[0]]
    site = neighbour[directions[0]]
    for k in directions[1:]:
        out = out @ step_link[k][site]
        site = neighbour[k][site]
    return out


def lattice_shape(graph: FramedGraph) -> tuple[int, ...]:
    """The ``shape`` a lattice graph was built with (the common shape of a batch of them)."""
    shape = graph.lattice_shape if "lattice_shape" in graph else None
    if isinstance(shape, list) and shape and isinstance(shape[0], (tuple, list)):
        if any(tuple(s) != tuple(shape[0]) for s in shape):
            raise ValueError(f"the batch mixes lattice shapes {sorted(set(map(tuple, shape)))}")
        shape = shape[0]
    if shape is None:
        raise ValueError("the graph has no lattice_shape; build it with meshgdl.geometry.lattice_graph")
    return tuple(int(s) for s in shape)


def _edge_direction(graph: FramedGraph) -> Tensor:
    if "link" not in graph or "edge_direction" not in graph:
        raise ValueError("not a lattice graph (no link or edge_direction); build it with "
                         "meshgdl.geometry.lattice_graph")
    return graph.edge_direction


def _dimension(graph: FramedGraph) -> int:
    shape = graph.get("lattice_shape")
    if shape:  # a tuple, or in a batch a list of tuples: known without reading a tensor
        return len(shape[0]) if isinstance(shape[0], (tuple, list)) else len(shape)
    return int(graph.edge_direction.max()) // 2 + 1


def _check_shape(shape) -> tuple[int, ...]:
    if isinstance(shape, int):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of ints, got {type(shape).__name__}") from None
    if not shape:
        raise ValueError("shape must have at least one dimension, e.g. (8, 8)")
    for s in shape:
        if isinstance(s, bool) or not isinstance(s, int) and not (isinstance(s, Tensor) and s.dim() == 0):
            raise TypeError(f"lattice sizes must be ints, got {shape}")
        if int(s) <= 0:
            raise ValueError(f"lattice sizes must be positive, got shape {shape}")
    return tuple(int(s) for s in shape)


def _links_tensor(links, shape, group, n, dtype, generator) -> Tensor:
    d, num = len(shape), math.prod(shape)
    if links is None:
        return groups.identity(group, (num, d), dtype=dtype)
    if isinstance(links, str):
        if links != "random":
            raise ValueError(f"links must be None, 'random' or a tensor, got {links!r}")
        return groups.random_element(group, (num, d), generator=generator, dtype=dtype)
    links = torch.as_tensor(links)
    if not links.is_complex():
        raise TypeError(f"links must be a complex tensor, got {links.dtype}")
    if tuple(links.shape) not in ((*shape, d, n, n), (num, d, n, n)):
        raise ValueError(f"links for shape {shape} and group {group} must have shape "
                         f"{[*shape, d, n, n]} or {[num, d, n, n]}, got {list(links.shape)}")
    groups.check_in_group(links, group)
    return links.to(dtype)
