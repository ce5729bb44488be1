import healpy as hp
import numpy as np
import pytest
import torch

from meshgdl.geometry import healpix_coarsen, healpix_graph, healpix_levels
from meshgdl.graph import wrap_angle


def test_parents_are_nested_quotients():
    fine = healpix_graph(8, dtype=torch.float64)
    coarse = healpix_coarsen(fine)
    assert coarse.nside == 4 and coarse.num_nodes == 192 and fine.pool_size == 192
    assert torch.equal(coarse.pixel[fine.pool_parent], fine.pixel // 4)
    # every parent centre lies inside the cone of its children (a sanity check on the geometry)
    dist = torch.arccos((fine.pos * coarse.pos[fine.pool_parent]).sum(-1).clamp(max=1))
    assert float(dist.max()) < 2 * hp.nside2resol(8)


def test_pool_transport_is_great_circle_transport():
    fine = healpix_graph(4, dtype=torch.float64)
    coarse = healpix_coarsen(fine)
    a = fine.pool_transport
    # Rodrigues rotation about x_c x x_p carries e1 of the child to cos a e1 + sin a e2 of the parent
    xc, xp = fine.pos, coarse.pos[fine.pool_parent]
    axis = torch.linalg.cross(xc, xp)
    angle = torch.atan2(axis.norm(dim=-1), (xc * xp).sum(-1))
    k = axis / axis.norm(dim=-1, keepdim=True)
    e1 = fine.frame[:, 0]
    rotated = (e1 * torch.cos(angle)[:, None] + torch.linalg.cross(k, e1) * torch.sin(angle)[:, None]
               + k * (k * e1).sum(-1, keepdim=True) * (1 - torch.cos(angle))[:, None])
    fp = coarse.frame[fine.pool_parent]
    got = torch.atan2((rotated * fp[:, 1]).sum(-1), (rotated * fp[:, 0]).sum(-1))
    assert wrap_angle(got - a).abs().max() < 1e-12


def test_partial_sky_optimistic_and_pessimistic():
    nside = 8
    theta, _ = hp.pix2ang(nside, np.arange(12 * nside**2), nest=True)
    keep = theta < 1.1
    fine = healpix_graph(nside, mask=keep, dtype=torch.float64)
    any_parent = np.unique(np.flatnonzero(keep) // 4)
    coarse = healpix_coarsen(fine)
    assert np.array_equal(coarse.pixel.numpy(), any_parent) and bool((fine.pool_parent >= 0).all())
    coarse = healpix_coarsen(fine, pessimistic=True)
    full_parents = np.flatnonzero(np.bincount(np.flatnonzero(keep) // 4, minlength=192) == 4)
    assert np.array_equal(coarse.pixel.numpy(), full_parents)
    orphan = fine.pool_parent < 0
    assert orphan.any() and not np.isin(fine.pixel[orphan].numpy() // 4, full_parents).any()


def test_levels():
    levels = healpix_levels(healpix_graph(8), 3)
    assert [g.nside for g in levels] == [8, 4, 2, 1]
    assert all("pool_parent" in g for g in levels[:-1]) and "pool_parent" not in levels[-1]


def test_bad_input():
    with pytest.raises(ValueError, match="nest=True"):
        healpix_coarsen(healpix_graph(4, nest=False))
    with pytest.raises(ValueError, match="coarsest"):
        healpix_coarsen(healpix_graph(1))
    with pytest.raises(ValueError, match="at most 2 times"):
        healpix_levels(healpix_graph(4), 3)
    with pytest.raises(ValueError, match="exactly the parents"):
        healpix_coarsen(healpix_graph(4), coarse=healpix_graph(4))
