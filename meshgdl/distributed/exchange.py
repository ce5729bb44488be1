r"""The halo exchange: each rank sends exactly the boundary rows other ranks read, through one
``all_to_all_single`` (gloo and NCCL both have it), and the backward pass sends the gradients of
the halo rows back and adds them into their owners."""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from .graph_part import GraphPart


def _all_to_all(rows: Tensor, out_counts: list, in_counts: list, group) -> Tensor:
    """Send ``in_counts[q]`` consecutive rows of ``rows`` to each rank ``q``; receive
    ``out_counts[q]`` from each, concatenated in rank order."""
    out = rows.new_empty((sum(out_counts),) + tuple(rows.shape[1:]))
    dist.all_to_all_single(out, rows.contiguous(), out_counts, in_counts, group=group)
    return out


class _HaloExchange(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, part: GraphPart, group) -> Tensor:
        ctx.part, ctx.group = part, group
        index = part.send_index.to(x.device)
        halo = _all_to_all(x.index_select(0, index), part.recv_counts, part.send_counts, group)
        return torch.cat([x, halo])

    @staticmethod
    def backward(ctx, grad: Tensor):
        part = ctx.part
        # the gradient of a halo row belongs to the rank that owns the node: send it back, and sum
        # the contributions of every rank that read the row into the owner's own gradient
        back = _all_to_all(grad[part.num_owned:], part.send_counts, part.recv_counts, ctx.group)
        index = part.send_index.to(grad.device)
        return grad[:part.num_owned].index_add(0, index, back), None, None


def halo_exchange(x: Tensor, part: GraphPart, node_dim: int = 0, group=None) -> Tensor:
    r"""The features of the part's owned nodes, extended by its halo rows from the other ranks.

    .. math::
        \tilde{x} = [x;\ x^{(q_1)}_{S_{q_1 r}};\ \dots], \qquad
        \frac{\partial L}{\partial x_u} = \frac{\partial L}{\partial \tilde{x}_u}
        + \sum_{q \text{ reading } u} \frac{\partial L}{\partial \tilde{x}^{(q)}_u}

    Every rank of ``group`` must call it, in the same order, with its own part of one
    partition; gradients flow back through it to the owners (the backward is an exchange too,
    which every rank's ``backward()`` reaches).

    Args:
        x (Tensor): the owned rows, :math:`N_\text{own}` along ``node_dim``.
        part (GraphPart): this rank's part (``part.rank`` must be the rank in ``group``).
        node_dim (int): the node dimension of ``x`` (``1`` for features :math:`[B, N, C]`) (default: ``0``)
        group: the ``torch.distributed`` process group (default: the world)

    Shapes:
        - input: ``x`` :math:`[N_\text{own}, *]`
        - output: :math:`[N_\text{own} + N_\text{halo}, *]` (along ``node_dim``), rows in the order of
          ``part.graph``'s nodes
    """
    if x.shape[node_dim] != part.num_owned:
        raise ValueError(f"halo_exchange takes the {part.num_owned} owned rows of rank {part.rank} along dim "
                         f"{node_dim}, got {x.shape[node_dim]}: pass x[part.owned] of the global features")
    if part.num_parts == 1:
        return x
    if not dist.is_initialized():
        raise RuntimeError("halo_exchange needs torch.distributed: call torch.distributed.init_process_group "
                           "(launched by torchrun, or spawn one process per part) before the forward pass")
    world = dist.get_world_size(group)
    if world != part.num_parts or dist.get_rank(group) != part.rank:
        raise ValueError(f"the part is rank {part.rank} of {part.num_parts}, but this process is rank "
                         f"{dist.get_rank(group)} of {world}: build the part of this rank "
                         "(build_part(graph, assignment, dist.get_rank()))")
    if node_dim:
        return _HaloExchange.apply(x.movedim(node_dim, 0), part, group).movedim(0, node_dim)
    return _HaloExchange.apply(x, part, group)
