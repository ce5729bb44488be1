r"""Run a model of :mod:`meshgdl.nn` on a :class:`~meshgdl.distributed.GraphPart`: every
message-passing layer exchanges the halo first and returns the owned rows; pointwise layers
(nonlinearities, layer norms, ``EquivariantLinear``) need nothing."""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch_geometric.nn import MessagePassing

from .graph_part import GraphPart
from .exchange import halo_exchange

# layers whose output at a node depends on more than its in-edges of one graph: pooling between
# levels, global pooling, windows; each would need its own exchange
_UNSUPPORTED = ("TransportPool", "HealpixPool", "HealpixUnpool", "GlobalInvariantPool", "HealpixWindowAttention",
                "HealSwinBlock", "HealpixPatchEmbed", "HealpixPatchMerging", "HealpixPatchExpanding",
                "LatticeConv", "LatticeBilinear", "WilsonLoopInput", "TraceReadout")


def _exchange_first(module, args, kwargs):
    part = args[1] if len(args) > 1 else kwargs.get("graph")
    if not isinstance(part, GraphPart):
        return None  # called on a whole graph: the model works unchanged
    x = args[0] if args else kwargs.pop("x")
    node_dim = x.dim() - 2  # [N, C] or [B, N, C]
    # the forward hook sees the local graph; remember which one, so that a later call of the same
    # layer on a whole graph (after a failed call, say) is never cut
    module.__dict__["_halo_call"] = (part.graph, part.num_owned, node_dim)
    x = halo_exchange(x, part, node_dim, module._halo_group)
    if len(args) > 1:
        return (x, part.graph) + tuple(args[2:]), kwargs
    return (x,), {**kwargs, "graph": part.graph}


def _keep_owned(module, args, kwargs, output):
    call = module.__dict__.pop("_halo_call", None)
    graph = args[1] if len(args) > 1 else kwargs.get("graph")
    if call is None or graph is not call[0]:
        return None
    return output.narrow(call[2], 0, call[1])


def _refuse_batch_statistics(module, args):
    if module.training and module._halo_state["on_part"]:
        raise RuntimeError(f"{type(module).__name__} in training mode normalises by statistics over all nodes, "
                           "which a partitioned graph spreads over ranks; use GaugeLayerNorm (norm='layer'), no "
                           "norm, or call model.eval() to normalise with the running statistics")


def distribute(model: torch.nn.Module, group=None) -> torch.nn.Module:
    r"""Make ``model`` run on a partitioned graph: ``model(x[part.owned], part)`` on every rank
    gives the owned rows of ``model(x, graph)``, forward and backward.

    Hooks are registered on every message-passing layer (subclasses of PyG's ``MessagePassing``:
    :class:`~meshgdl.nn.GemConv`, :class:`~meshgdl.nn.IsoConv`, the C_N convolutions, your own
    :class:`~meshgdl.nn.GaugeMessagePassing`): when a layer is called as ``layer(x, part)``, it
    runs as ``layer(halo_exchange(x, part), part.graph)`` and returns the owned rows. Called with a
    whole graph, the model is unchanged; its ``state_dict`` is unchanged either way, so
    checkpoints move between one process and many.

    :class:`~meshgdl.nn.GaugeBatchNorm` in training mode raises on a part (its statistics span all
    ranks); layers that pool, attend over windows or act on lattices are refused here.

    Args:
        model (torch.nn.Module): the model, changed in place and returned.
        group: the ``torch.distributed`` process group of the exchange (default: the world)
    """
    from ..nn.gauge.gauge_batch_norm import GaugeBatchNorm

    # norms are called without the graph, so the model's own call tells whether it runs on a part
    state = {"on_part": False}

    def enter(module, args, kwargs):
        state["on_part"] = any(isinstance(a, GraphPart) for a in (*args, *kwargs.values()))

    def leave(module, args, kwargs, output):
        state["on_part"] = False

    if getattr(model, "_halo_state", None) is None:
        model._halo_state = state
        model.register_forward_pre_hook(enter, with_kwargs=True)
        model.register_forward_hook(leave, with_kwargs=True, always_call=True)
    for name, module in model.named_modules():
        kind = type(module).__name__
        if kind in _UNSUPPORTED:
            raise ValueError(f"{name or 'the model'} is a {kind}, which distribute does not support: only "
                             "message passing on one graph and pointwise layers run on a partitioned graph")
        if getattr(module, "_halo_group", False) is not False:
            continue  # distributed already
        if isinstance(module, MessagePassing):
            module._halo_group = group
            module.register_forward_pre_hook(_exchange_first, with_kwargs=True)
            module.register_forward_hook(_keep_owned, with_kwargs=True)
        elif isinstance(module, GaugeBatchNorm):
            module._halo_group, module._halo_state = group, model._halo_state
            module.register_forward_pre_hook(_refuse_batch_statistics)
    return model


def reduce_gradients(model: torch.nn.Module, group=None) -> None:
    r"""Sum every parameter's gradient over the ranks, in place.

    On a partitioned graph each rank's loss is its share of the global loss (for a mean over
    nodes: the sum over its owned nodes divided by the global node count), so the global gradient
    is the sum over ranks. (DDP averages instead, which divides it by :math:`P`.)
    """
    for param in model.parameters():
        if param.grad is None:
            # every rank must join each all_reduce, so a parameter without gradient sends zeros
            param.grad = torch.zeros_like(param)
        dist.all_reduce(param.grad, group=group)
