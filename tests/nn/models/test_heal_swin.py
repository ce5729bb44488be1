"""HEAL-SWIN models: exact symmetry under the polar rotations with the grid shift, partial skies,
small resolutions, and clear errors."""
import numpy as np
import pytest
import torch

from meshgdl.geometry import healpix_graph
from meshgdl.nn import HealSwin, HealSwinUNet

from ..attention.test_healpix_window_attention import polar_rotation

SMALL = dict(embed_dim=8, depths=(2, 2), heads=(2, 4), window_order=2)


def test_the_unet_commutes_with_the_polar_rotation_with_the_grid_shift():
    nside = 16
    perm = polar_rotation(nside)
    graph = healpix_graph(nside, dtype=torch.float64)
    torch.manual_seed(0)
    model = HealSwinUNet(3, 4, nside, **SMALL).double().eval()
    x = torch.randn(2, graph.num_nodes, 3, dtype=torch.float64)
    y = model(x, graph)
    torch.testing.assert_close(model(x[:, perm], graph), y[:, perm], atol=1e-10, rtol=0)
    classifier = HealSwin(3, 5, nside, **SMALL).double().eval()
    torch.testing.assert_close(classifier(x[:, perm], graph), classifier(x, graph), atol=1e-10, rtol=0)


def test_the_ring_shift_unet_is_not_exactly_symmetric():
    nside = 16
    perm = polar_rotation(nside)
    graph = healpix_graph(nside, dtype=torch.float64)
    torch.manual_seed(0)
    model = HealSwinUNet(3, 4, nside, shift="ring", **SMALL).double().eval()
    x = torch.randn(1, graph.num_nodes, 3, dtype=torch.float64)
    with torch.no_grad():
        y = model(x, graph)
        err = (model(x[:, perm], graph) - y[:, perm]).abs().max() / y.abs().max()
    assert err > 1e-4


def test_partial_skies_train_and_small_resolutions_run():
    nside = 8
    keep = np.random.default_rng(0).random(12 * nside * nside) < 0.5
    graph = healpix_graph(nside, mask=keep)
    model = HealSwinUNet(2, 3, nside, **SMALL)
    x = torch.randn(graph.num_nodes, 2)
    y = model(x, graph)
    assert y.shape == (graph.num_nodes, 3) and bool(torch.isfinite(y).all())
    y.square().mean().backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in model.parameters()
               if p.requires_grad and p.grad is not None)
    # nside 2 with patches of 4: one token per base pixel, windows of one token, no shift
    tiny = HealSwinUNet(1, 2, 2, embed_dim=4, depths=(1,), heads=(2,))
    assert tiny(torch.randn(48, 1), healpix_graph(2)).shape == (48, 2)
    one = HealSwin(1, 2, 1, embed_dim=4, depths=(2,), heads=(1,), patch_order=0)
    assert one(torch.randn(12, 1), healpix_graph(1)).shape == (2,)


def test_models_name_the_problem():
    with pytest.raises(ValueError, match="nside >= 8"):
        HealSwinUNet(1, 1, 4, depths=(2, 2, 2), heads=(1, 1, 1))
    with pytest.raises(ValueError, match="heads do not divide"):
        HealSwin(1, 1, 16, embed_dim=6, depths=(2,), heads=(4,))
    model = HealSwin(1, 2, 8, **SMALL)
    with pytest.raises(ValueError, match="built for nside 8"):
        model(torch.randn(192, 1), healpix_graph(4))
