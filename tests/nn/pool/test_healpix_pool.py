import healpy as hp
import numpy as np
import pytest
import torch

from meshgdl import FieldType, gauge_transform
from meshgdl.geometry import graph_to_healpix, healpix_coarsen, healpix_graph, healpix_map_graph
from meshgdl.nn import HealpixPool, HealpixUnpool, pool_healpix, unpool_healpix
from tests.conftest import require_data


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_scalars_equal_ud_grade():
    nside = 8
    m = np.random.default_rng(0).standard_normal(12 * nside**2)
    fine = healpix_map_graph(m, nest=True, dtype=torch.float64)
    coarse = healpix_coarsen(fine)
    pooled = pool_healpix(fine.x, fine)
    assert np.allclose(graph_to_healpix(coarse, pooled, nest=True), hp.ud_grade(m, 4, order_in="NEST", order_out="NEST"), rtol=0, atol=1e-14)
    up = unpool_healpix(pooled, fine)
    assert np.allclose(graph_to_healpix(fine, up, nest=True), hp.ud_grade(hp.ud_grade(m, 4, order_in="NEST", order_out="NEST"), 8, order_in="NEST", order_out="NEST"), atol=1e-14)
    top = pool_healpix(fine.x, fine, reduce="max")
    assert torch.equal(top[:, 0], torch.from_numpy(m.reshape(-1, 4).max(1)))


@pytest.mark.parametrize("reduce", ["mean", "max"])
def test_gauge_equivariance(reduce, dtype):
    ft = FieldType([2, 1, 2])
    fine = healpix_graph(4, dtype=dtype)
    coarse = healpix_coarsen(fine)
    p_f = torch.rand(fine.num_nodes, generator=_gen(1), dtype=dtype) * 6
    p_c = torch.rand(coarse.num_nodes, generator=_gen(2), dtype=dtype) * 6
    fine_t, coarse_t = gauge_transform(fine, p_f), gauge_transform(coarse, p_c)
    healpix_coarsen(fine_t, coarse=coarse_t)
    x = torch.randn(3, fine.num_nodes, ft.dim, generator=_gen(3), dtype=dtype)  # a batch of 3
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    out = pool_healpix(x, fine, ft, reduce)
    out_t = pool_healpix(ft.transform(x, p_f), fine_t, ft, reduce)
    assert out.shape == (3, coarse.num_nodes, ft.dim)
    assert torch.allclose(out_t, ft.transform(out, p_c), atol=tol)
    y = torch.randn(coarse.num_nodes, ft.dim, generator=_gen(4), dtype=dtype)
    assert torch.allclose(unpool_healpix(ft.transform(y, p_c), fine_t, ft), ft.transform(unpool_healpix(y, fine, ft), p_f), atol=tol)


def test_vectors_pool_to_the_parents_vector():
    """The tangent part of a constant 3D vector, pooled, approaches the parent's tangent part."""
    u = torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64)
    errors = []
    for nside in (8, 32):
        fine = healpix_graph(nside, dtype=torch.float64)
        coarse = healpix_coarsen(fine)
        field = lambda g: torch.stack([g.frame[:, 0] @ u, g.frame[:, 1] @ u], 1)
        pooled = pool_healpix(field(fine), fine, FieldType.vectors(1))
        errors.append(float((pooled - field(coarse)).abs().max()))
    assert errors[1] < errors[0] / 3 and errors[1] < 5e-3  # converges with the pixel size
    # unpooling a parent's vector is exact transport: it keeps the length
    y = torch.randn(coarse.num_nodes, 2, generator=_gen(5), dtype=torch.float64)
    up = unpool_healpix(y, fine, FieldType.vectors(1))
    assert torch.allclose(up.norm(dim=-1), y.norm(dim=-1)[fine.pool_parent])


def test_partial_sky_pooling_matches_ud_grade():
    nside = 8
    m = np.random.default_rng(1).standard_normal(12 * nside**2)
    m[np.random.default_rng(2).random(len(m)) < 0.4] = hp.UNSEEN
    fine = healpix_map_graph(m, nest=True, dtype=torch.float64)
    for pess in (False, True):
        coarse = healpix_coarsen(fine, pessimistic=pess)
        got = graph_to_healpix(coarse, pool_healpix(fine.x, fine), nest=True)
        ref = hp.ud_grade(m, 4, order_in="NEST", order_out="NEST", pess=pess)
        assert np.allclose(got, ref, rtol=1e-14, atol=0)
        up = unpool_healpix(pool_healpix(fine.x, fine), fine)
        assert bool((up[fine.pool_parent < 0] == 0).all())


def test_wmap_pools_like_ud_grade():
    path = require_data("healpy", "wmap_band_iqumap_r9_7yr_W_v4_udgraded32_masked.fits")
    m = hp.read_map(str(path), nest=True, dtype=np.float64)
    fine = healpix_map_graph(m, nest=True, dtype=torch.float64)
    coarse = healpix_coarsen(fine)
    got = graph_to_healpix(coarse, pool_healpix(fine.x, fine), nest=True)
    ref = hp.ud_grade(m, 16, order_in="NEST", order_out="NEST")
    assert np.allclose(got, ref, rtol=1e-12, atol=0)
    full = healpix_map_graph(require_data("healpy", "wmap_band_iqumap_r9_7yr_W_v4_udgraded32.fits"), field=0, dtype=torch.float64)
    coarse = healpix_coarsen(full)
    i = hp.read_map(str(require_data("healpy", "wmap_band_iqumap_r9_7yr_W_v4_udgraded32.fits")), nest=True, dtype=None)
    got = graph_to_healpix(coarse, pool_healpix(full.x, full), nest=True)
    assert np.allclose(got, hp.ud_grade(i, 16, order_in="NEST", order_out="NEST"), rtol=1e-6, atol=0)


def test_modules_and_errors():
    fine = healpix_graph(2)
    healpix_coarsen(fine)
    ft = FieldType([1, 1])
    pool, unpool = HealpixPool(ft, reduce="max"), HealpixUnpool(ft)
    assert repr(pool) == "HealpixPool(FieldType([1, 1]), reduce='max')" and repr(unpool) == "HealpixUnpool(FieldType([1, 1]))"
    x = torch.randn(48, 3)
    assert unpool(pool(x, fine), fine).shape == (48, 3)
    with pytest.raises(ValueError, match=r"\[\.\.\., 48, 3\]"):
        pool(torch.randn(47, 3), fine)
    with pytest.raises(ValueError, match="reduce"):
        HealpixPool(ft, reduce="sum")
    with pytest.raises(ValueError, match="healpix_coarsen"):
        pool_healpix(x, healpix_graph(2), ft)
