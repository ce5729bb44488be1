"""The input check of the message-passing layers, norms and pools that take ``(x, graph)``: shapes
only, so it costs nothing and traces under ``torch.compile``; the diagnosis runs only once the
check has failed. The pointwise layers (nonlinearities, ``EquivariantLinear``) do not call it yet."""
from __future__ import annotations

import torch
from torch import Tensor


def graph_num_nodes(graph) -> int:
    """``graph.num_nodes``; under ``torch.compile``, read from a node tensor, since dynamo cannot
    follow PyG's ``num_nodes`` property."""
    if torch.compiler.is_compiling():
        for key in ("pos", "frame"):
            value = getattr(graph, key, None)
            if value is not None:
                return value.shape[0]
    return graph.num_nodes


def check_features(layer, x, field_type, num_nodes: int | None = None, batched: bool = False) -> None:
    """Raise unless ``x`` is a floating tensor ``[N, C]`` (or ``[B, N, C]`` where ``batched``) with
    ``C = field_type.dim`` and ``N = num_nodes`` (any ``N`` when ``None``)."""
    if isinstance(x, Tensor) and x.is_floating_point():
        c = field_type.dim
        if x.dim() == 2 and x.shape[1] == c and (num_nodes is None or x.shape[0] == num_nodes):
            return
        if batched and x.dim() == 3 and x.shape[2] == c and (num_nodes is None or x.shape[1] == num_nodes):
            return
    raise _diagnose(layer, x, field_type, num_nodes, batched)


def _diagnose(layer, x, field_type, n: int | None, batched: bool) -> Exception:
    name = type(layer).__name__
    c = field_type.dim
    rows = "N" if n is None else str(n)
    want = f"[{rows}, {c}]" + (f" or [B, {rows}, {c}] (B samples on one shared graph)" if batched else "")
    where = f"{field_type} has {c} channels" + ("" if n is None else f" and the graph has {n} nodes")
    if not isinstance(x, Tensor):
        return TypeError(f"{name} takes a feature tensor {want}, got {type(x).__name__}")
    if not x.is_floating_point():
        return TypeError(f"{name} takes floating-point features, got {x.dtype}: pass x.float() (or .double())")
    shape = list(x.shape)
    head = f"{name} expects features {want}: {where}; got {shape}"
    if x.dim() == 1:
        return ValueError(f"{head}: a 1-D tensor; pass x[:, None] for one channel per node, or x[None] for one node")
    if x.dim() == 3:
        if batched and shape[0] == n and shape[2] == c:
            return ValueError(f"{head}: [N, B, C] looks transposed; pass [B, N, C], i.e. x.transpose(0, 1)")
        if not batched and (n is None or shape[1] == n) and shape[2] == c:
            fix = "the fused path (fused=True)" if hasattr(layer, "fused") else "a PyG Batch of graphs with [N, C] features"
            return ValueError(f"{head}: features [B, N, C] over one shared graph need {fix}")
    if x.dim() not in (2, 3) or (x.dim() == 3 and not batched):
        return ValueError(f"{head}: {x.dim()}-D features")
    rows_got, c_got = shape[-2], shape[-1]
    problems = []
    if c_got != c:
        problems.append(f"{c_got} channels where {field_type} has {c}; check the layer's input field type")
    if n is not None and rows_got != n:
        problems.append(f"{rows_got} rows where the graph has {n} nodes; pass the features of this graph")
    return ValueError(f"{head}: " + " and ".join(problems))
