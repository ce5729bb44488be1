import logging

import healpy as hp
import numpy as np
import pytest

from meshgdl.geometry import graph_to_healpix, healpix_graph, healpix_map_graph, write_healpix_map
from meshgdl.geometry.healpix_mask import keep_from_mask, unseen_pixels

NSIDE = 4
NPIX = 12 * NSIDE**2


def _map_with_holes(fields=2, seed=0):
    """A float32 map with UNSEEN pixels, and which pixels those are."""
    rng = np.random.default_rng(seed)
    maps = rng.standard_normal((fields, NPIX)).astype(np.float32)
    holes = rng.random(NPIX) < 0.2
    maps[:, holes] = hp.UNSEEN
    return maps, holes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unseen_survives_a_cast_and_never_reaches_x(dtype):
    maps, holes = _map_with_holes()
    cast = maps.astype(dtype)
    if dtype != np.float32:
        assert not (cast == np.asarray(hp.UNSEEN, dtype=dtype)).any()  # exact equality finds no hole
    assert np.array_equal(unseen_pixels(cast).any(0), holes)
    assert np.array_equal(unseen_pixels(cast), hp.mask_bad(cast))  # healpy's own rule
    for nest in (False, True):
        graph = healpix_map_graph(cast, nest=nest, graph_nest=True)
        pix = graph.pixel.numpy() if nest else hp.nest2ring(NSIDE, graph.pixel.numpy())
        assert graph.num_nodes == NPIX - holes.sum() and not holes[pix].any()
        assert graph.x.abs().max() < 10  # nothing near 1e30 anywhere in x
        back = graph_to_healpix(graph, nest=nest)
        assert back.dtype == cast.dtype and np.array_equal(back[:, ~holes], cast[:, ~holes])
        assert (back[:, holes] == np.asarray(hp.UNSEEN, dtype=dtype)).all()  # written exactly
    # a map used as a mask drops the same pixels
    assert np.array_equal(healpix_graph(NSIDE, nest=False, mask=cast[0]).pixel.numpy(), np.flatnonzero(~holes & (maps[0] > 0)))


def test_unseen_in_a_float32_fits_file_read_back_as_float64(tmp_path):
    maps, holes = _map_with_holes(fields=1)
    path = tmp_path / "float32.fits"
    hp.write_map(str(path), maps[0], dtype=np.float32)
    graph = healpix_map_graph(path)
    assert graph.num_nodes == NPIX - holes.sum() and graph.x.abs().max() < 10
    as64 = hp.read_map(str(path), dtype=np.float64)
    graph64 = healpix_map_graph(as64)
    assert graph64.num_nodes == graph.num_nodes and graph64.x.abs().max() < 10
    assert np.array_equal(graph64.x.numpy(), graph.x.double().numpy())
    out = write_healpix_map(graph64, tmp_path / "out.fits")
    back = hp.read_map(str(out), dtype=None)
    assert back.dtype.kind == "f" and back.dtype.itemsize == 8 and np.array_equal(hp.mask_bad(back), holes)
    assert (back[holes] == hp.UNSEEN).all()
    assert np.array_equal(back[~holes], as64[~holes])


def test_float16_maps():
    maps, holes = _map_with_holes(fields=1)
    with np.errstate(over="ignore"):
        half = maps.astype(np.float16)  # UNSEEN does not fit: it becomes -inf
    with pytest.raises(ValueError, match=rf"-inf at {holes.sum()}.*does not fit in float16.*nonfinite='mask'"):
        healpix_map_graph(half)
    graph = healpix_map_graph(half, nonfinite="mask")
    assert graph.num_nodes == NPIX - holes.sum() and graph.x.isfinite().all()
    back = graph_to_healpix(graph)  # float32, the narrowest float that holds UNSEEN
    assert back.dtype == np.float32 and np.array_equal(back[holes], np.full(holes.sum(), hp.UNSEEN, np.float32))
    assert np.array_equal(back[~holes], half[0, ~holes].astype(np.float32))
    assert np.array_equal(graph_to_healpix(healpix_map_graph(back)), back)  # and the round trip is exact


def test_nan_and_inf_are_counted_or_masked():
    maps = np.random.default_rng(1).standard_normal((2, NPIX))
    maps[0, 3], maps[1, 3], maps[1, 9], maps[0, 20], maps[0, 30] = np.nan, np.inf, np.inf, -np.inf, hp.UNSEEN
    with pytest.raises(ValueError, match=r"at 3 pixels \(NaN at 1, \+inf at 2, -inf at 1; first: pixel 3\)"):
        healpix_map_graph(maps)
    graph = healpix_map_graph(maps, nonfinite="mask", graph_nest=False)
    assert graph.pixel.tolist() == [p for p in range(NPIX) if p not in (3, 9, 20, 30)]
    assert graph.x.isfinite().all()
    keep = np.ones(NPIX, dtype=bool)
    keep[[3, 9, 20]] = False
    assert healpix_map_graph(maps, mask=keep).num_nodes == NPIX - 4  # masked pixels are not checked
    with pytest.raises(ValueError, match="'raise' or 'mask'"):
        healpix_map_graph(maps, nonfinite="drop")


def test_masks_keep_what_is_positive(caplog):
    m = np.random.default_rng(2).standard_normal(NPIX)
    apodised = np.clip(np.linspace(-0.5, 1.5, NPIX), 0, 1)  # 0 .. ramp .. 1
    with caplog.at_level(logging.WARNING, logger="meshgdl"):
        keep = keep_from_mask(apodised, NPIX)
    assert np.array_equal(keep, apodised > 0) and not keep.all()
    assert "not a 0/1 mask" in caplog.text and "mask=apodised > 0.5" in caplog.text
    graph = healpix_map_graph(m, mask=apodised > 0.5, graph_nest=False)
    assert np.array_equal(graph.pixel.numpy(), np.flatnonzero(apodised > 0.5))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="meshgdl"):
        for quiet in ((apodised > 0).astype(np.float32), np.where(apodised > 0, 2.5, hp.UNSEEN).astype(np.float32)):
            assert np.array_equal(keep_from_mask(quiet, NPIX), apodised > 0)
    assert caplog.text == ""  # 0/1 and UNSEEN-marked masks are not thresholded silently wrong: no warning
    with pytest.raises(ValueError, match=r"> 0 keeps"):
        keep_from_mask(np.where(apodised > 0, np.nan, 1.0), NPIX)
    with pytest.raises(ValueError, match=r"one value per pixel.*True keeps.*> 0 keeps"):
        keep_from_mask(np.ones(12), NPIX)
