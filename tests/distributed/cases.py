"""Graphs and models shared by the partition tests, and the launcher of gloo processes."""
from __future__ import annotations

import datetime
import gc
import socket

import numpy as np
import torch

from meshgdl import FieldType
from meshgdl.nn import GemConv, IsoConv, NormNonlinearity


def icosphere_graph():
    """A closed mesh of 162 vertices (intrinsic connection), float64."""
    import trimesh

    from meshgdl.geometry import mesh_graph

    mesh = trimesh.creation.icosphere(2)
    return mesh_graph(mesh.vertices, mesh.faces, dtype=torch.float64)


def sky_graph():
    """HEALPix nside 8 in nested order with a partial mask: a band around the equator and a
    hole cut away, so parts meet the mask's edge."""
    from meshgdl.geometry import healpix_graph

    import healpy as hp

    nside = 8
    theta, phi = hp.pix2ang(nside, np.arange(12 * nside ** 2), nest=True)
    keep = (np.abs(np.cos(theta)) > 0.2) & ~((np.abs(theta - 0.8) < 0.3) & (np.abs(phi - 2.0) < 0.4))
    return healpix_graph(nside, mask=keep, dtype=torch.float64)


class GemStack(torch.nn.Module):
    """Three GemConv layers with norm nonlinearities between them (scalars -> frequencies 0..2 ->
    scalars; radial profiles in the first, PyG message passing in the second), then an IsoConv."""

    def __init__(self, in_channels: int = 2, out_channels: int = 3):
        super().__init__()
        hidden = FieldType.uniform(3, 2)
        self.convs = torch.nn.ModuleList([
            GemConv(FieldType.scalars(in_channels), hidden, num_radial=2, cutoff=0.3),
            GemConv(hidden, hidden, fused=False),
            GemConv(hidden, FieldType.scalars(out_channels)),
        ])
        self.iso = IsoConv(out_channels, out_channels, num_radial=2, cutoff=0.3)
        self.act = NormNonlinearity(hidden)

    def forward(self, x, graph):
        for conv in self.convs[:-1]:
            x = self.act(conv(x, graph))
        return self.iso(torch.tanh(self.convs[-1](x, graph)), graph)


def build_model(name: str) -> torch.nn.Module:
    from meshgdl.nn.models import GemResNet

    torch.manual_seed(0)
    if name == "stack":
        model = GemStack()
    else:
        model = GemResNet(2, 3, hidden_type=FieldType.uniform(3, 2), num_blocks=1, norm="layer")
    return model.double()


def loss_and_grads(model, x, graph, weight):
    """``sum(model(x, graph) * weight)`` with ``x`` a leaf: the output and the gradients of the
    input and of every parameter."""
    x = x.clone().requires_grad_()
    model.zero_grad()
    y = model(x, graph)
    (y * weight).sum().backward()
    return y.detach(), x.grad, {k: p.grad.clone() for k, p in model.named_parameters()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank, fn, port, world, args):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=60))  # a broken exchange fails, never hangs
    try:
        fn(rank, *args)
    finally:
        gc.collect()  # as meshgdl.train.ddp.teardown: nothing of the group may outlive it in a cycle
        dist.destroy_process_group()


def run_ranks(fn, world: int, *args) -> None:
    """``fn(rank, *args)`` in ``world`` spawned processes joined by gloo; a failure raises here."""
    import torch.multiprocessing as mp

    mp.spawn(_entry, args=(fn, _free_port(), world, args), nprocs=world, join=True)
