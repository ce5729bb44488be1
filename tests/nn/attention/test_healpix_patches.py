"""Patch embedding, merging and expanding on HEALPix: healpy's grouping, partial skies, and the
polar rotations."""
import healpy as hp
import numpy as np
import pytest
import torch
from torch import nn

from meshgdl.nn import HealpixPatchEmbed, HealpixPatchExpanding, HealpixPatchMerging, HealpixSky

from .test_healpix_window_attention import polar_rotation


def averaging(linear, group, channels):
    with torch.no_grad():
        linear.weight.zero_()
        for c in range(channels):
            linear.weight[c, c::channels] = 1.0 / group
        if linear.bias is not None:
            linear.bias.zero_()


@pytest.mark.parametrize("order", [1, 2])
def test_patches_are_healpys_ud_grade_groups(order):
    nside = 8
    m = np.random.default_rng(0).normal(size=(2, 12 * nside * nside))
    embed = HealpixPatchEmbed(2, 2, order, norm=False).double()
    averaging(embed.proj, 4 ** order, 2)
    got = embed(torch.from_numpy(m.T), HealpixSky(nside))
    expect = np.stack([hp.ud_grade(c, nside >> order, order_in="NESTED", order_out="NESTED") for c in m], 1)
    np.testing.assert_allclose(got.detach().numpy(), expect, atol=1e-12)
    merge = HealpixPatchMerging(2, 2).double()
    merge.norm = nn.Identity()
    averaging(merge.reduction, 4, 2)
    got = merge(torch.from_numpy(m.T), HealpixSky(nside))
    expect = np.stack([hp.ud_grade(c, nside // 2, order_in="NESTED", order_out="NESTED") for c in m], 1)
    np.testing.assert_allclose(got.detach().numpy(), expect, atol=1e-12)


def test_expanding_writes_each_token_into_its_children_in_nested_order():
    nside = 4
    up = HealpixPatchExpanding(3, 3, order=1).double()
    up.norm = nn.Identity()
    with torch.no_grad():  # child k of a token gets k + the token's value
        up.expand.weight.copy_(torch.eye(3).repeat(4, 1))
    x = torch.randn(12 * (nside // 2) ** 2, 3, dtype=torch.float64)
    y = up(x, HealpixSky(nside))
    torch.testing.assert_close(y, x.repeat_interleave(4, 0))


def test_a_partial_sky_reads_dropped_pixels_as_zeros_and_keeps_only_its_pixels():
    nside = 8
    npix = 12 * nside * nside
    pixel = torch.from_numpy(np.flatnonzero(np.random.default_rng(1).random(npix) < 0.3))
    part, full = HealpixSky(nside, pixel), HealpixSky(nside)
    x = torch.randn(2, len(pixel), 4, dtype=torch.float64)
    padded = torch.zeros(2, npix, 4, dtype=torch.float64)
    padded[:, pixel] = x
    torch.manual_seed(0)
    embed, merge, up = (HealpixPatchEmbed(4, 6, 1).double(), HealpixPatchMerging(4).double(),
                        HealpixPatchExpanding(4, 4).double())
    parents = torch.unique(pixel // 4)
    torch.testing.assert_close(embed(x, part), embed(padded, full)[:, parents])
    torch.testing.assert_close(merge(x, part), merge(padded, full)[:, parents])
    coarse = torch.randn(2, len(parents), 4, dtype=torch.float64)
    coarse_full = torch.zeros(2, npix // 4, 4, dtype=torch.float64)
    coarse_full[:, parents] = coarse
    torch.testing.assert_close(up(coarse, part), up(coarse_full, full)[:, pixel])


def test_merging_and_expanding_commute_with_the_polar_rotation():
    nside = 8
    fine, coarse = polar_rotation(nside), polar_rotation(nside // 2)
    torch.manual_seed(0)
    merge, up = HealpixPatchMerging(4).double(), HealpixPatchExpanding(8, 4).double()
    x = torch.randn(12 * nside * nside, 4, dtype=torch.float64)
    sky = HealpixSky(nside)
    torch.testing.assert_close(merge(x[fine], sky), merge(x, sky)[coarse], atol=1e-13, rtol=0)
    y = torch.randn(12 * (nside // 2) ** 2, 8, dtype=torch.float64)
    torch.testing.assert_close(up(y[coarse], sky), up(y, sky)[fine], atol=1e-13, rtol=0)


def test_patch_layers_name_the_problem():
    with pytest.raises(ValueError, match="nside would fall below 1"):
        HealpixPatchEmbed(1, 4, 2)(torch.randn(48, 1), HealpixSky(2))
    with pytest.raises(ValueError, match="48"):
        HealpixPatchMerging(4)(torch.randn(47, 4), HealpixSky(2))
