import healpy as hp
import numpy as np
import pytest
import torch

from meshgdl import FramedGraph
from meshgdl.geometry import graph_to_healpix, healpix_map_graph, read_healpix_fits, write_healpix_map
from tests.conftest import require_data

WMAP_W = "wmap_band_iqumap_r9_7yr_W_v4_udgraded32.fits"
WMAP_W_MASKED = "wmap_band_iqumap_r9_7yr_W_v4_udgraded32_masked.fits"
WMAP_MASK = "wmap_temperature_analysis_mask_r9_7yr_v4_udgraded32.fits"


def _random_map(nside, fields=2, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal((fields, 12 * nside**2)).astype(dtype)


@pytest.mark.parametrize("graph_nest", [True, False])
@pytest.mark.parametrize("nest", [True, False])
def test_round_trip_is_bit_exact(nest, graph_nest):
    maps = _random_map(8, dtype=np.float32)
    maps[:, 5:40] = hp.UNSEEN  # a masked patch
    graph = healpix_map_graph(maps, nest=nest, graph_nest=graph_nest)
    assert graph.num_nodes == maps.shape[1] - 35 and graph.x.dtype == torch.float32
    assert np.array_equal(graph_to_healpix(graph, nest=nest), maps)
    # features follow the graph's ordering: node k is pixel graph.pixel[k] in the graph's scheme
    ring = maps if not nest else hp.reorder(maps, n2r=True)
    pix = graph.pixel.numpy() if not graph_nest else hp.nest2ring(8, graph.pixel.numpy())
    assert np.array_equal(graph.x.numpy(), ring[:, pix].T)
    full = healpix_map_graph(maps[0].astype(np.float64).clip(-5, 5), nest=nest, graph_nest=graph_nest)
    assert np.array_equal(graph_to_healpix(full, nest=nest), maps[0].astype(np.float64).clip(-5, 5))


def test_masks_of_every_kind():
    maps = _random_map(4, fields=1)[0]
    keep = np.arange(len(maps)) % 3 != 0
    expect = np.where(keep, maps, hp.UNSEEN)
    for mask in (keep, keep.astype(float), np.where(keep, 2.5, hp.UNSEEN)):
        graph = healpix_map_graph(maps, mask=mask)
        assert np.array_equal(graph_to_healpix(graph), expect)
    graph = healpix_map_graph(np.ma.masked_array(maps, ~keep))
    assert np.array_equal(graph_to_healpix(graph), expect)


def test_fits_file_round_trip(tmp_path):
    maps = _random_map(4, fields=3, dtype=np.float32)
    maps[:, :10] = hp.UNSEEN
    path = tmp_path / "in.fits"
    hp.write_map(str(path), maps, nest=True, column_names=["I", "Q", "U"], dtype=np.float32)
    graph = healpix_map_graph(path, graph_nest=False)
    assert graph.field_names == ["I", "Q", "U"]
    assert np.array_equal(graph_to_healpix(graph, nest=True), maps)
    assert np.array_equal(healpix_map_graph(path, field="Q").x[:, 0].numpy(), graph.x[:, 1].numpy()[np.argsort(hp.ring2nest(4, graph.pixel.numpy()))])
    out = write_healpix_map(graph, tmp_path / "out.fits")
    back = hp.read_map(str(out), field=(0, 1, 2), dtype=None)
    assert np.array_equal(back, graph_to_healpix(graph))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_healpix_map(graph, out)
    with pytest.raises(ValueError, match="NESTED by its header"):
        healpix_map_graph(path, nest=False)


def test_failed_fits_write_leaves_no_partial_file(tmp_path, monkeypatch):
    graph = healpix_map_graph(_random_map(2, fields=1, dtype=np.float64))

    def disk_full(filename, *args, **kwargs):
        with open(filename, "wb") as f:
            f.write(b"SIMPLE  =                    T")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(hp, "write_map", disk_full)
    with pytest.raises(OSError, match=r"could not write .*out.fits.gz \(No space left on device\)"):
        write_healpix_map(graph, tmp_path / "out.fits.gz")
    assert [p.name for p in tmp_path.iterdir() if p.name != "cache"] == []


def test_wmap_maps_and_mask_convert():
    path, mask = require_data("healpy", WMAP_W), require_data("healpy", WMAP_MASK)
    maps = hp.read_map(str(path), field=(0, 1, 2), dtype=None)
    graph = healpix_map_graph(path)
    assert graph.field_names == ["I_STOKES", "Q_STOKES", "U_STOKES"] and graph.num_nodes == 12 * 32**2
    assert np.array_equal(graph_to_healpix(graph), maps)
    cut = healpix_map_graph(path, mask=mask)
    analysis = hp.read_map(str(mask)) == 1
    assert cut.num_nodes == int(analysis.sum())  # 62 % of the sky
    assert np.array_equal(graph_to_healpix(cut), np.where(analysis, maps, hp.UNSEEN).astype(np.float32))
    masked = healpix_map_graph(require_data("healpy", WMAP_W_MASKED), field=0)
    m = hp.read_map(str(require_data("healpy", WMAP_W_MASKED)), dtype=None)
    assert masked.num_nodes == int((m != hp.UNSEEN).sum()) < 12 * 32**2
    assert np.array_equal(graph_to_healpix(masked), m)


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="12 nside"):
        healpix_map_graph(np.zeros(100))
    with pytest.raises(ValueError, match="12 nside"):
        healpix_map_graph(np.zeros(12 * 9))  # nside 3 is not a power of two
    with pytest.raises(ValueError, match="192 values"):
        healpix_map_graph(np.zeros(192), mask=np.ones(48, dtype=bool))
    with pytest.raises(ValueError, match="UNSEEN, non-finite or masked"):
        healpix_map_graph(np.full(48, hp.UNSEEN))
    bad = np.zeros(48)
    bad[7] = np.nan
    with pytest.raises(ValueError, match=r"non-finite values at 1 pixels \(NaN at 1; first: pixel 7\).*nonfinite=.mask."):
        healpix_map_graph(bad)
    text = tmp_path / "x.fits"
    text.write_text("not a fits file")
    with pytest.raises(ValueError, match="not a FITS file"):
        healpix_map_graph(text)
    from astropy.io import fits

    image = tmp_path / "image.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((4, 4)))]).writeto(image)
    with pytest.raises(ValueError, match="not a HEALPix map"):
        read_healpix_fits(image)
    with pytest.raises(FileNotFoundError):
        healpix_map_graph(tmp_path / "missing.fits")
    graph = healpix_map_graph(np.zeros(48))
    with pytest.raises(ValueError, match=r"\[N\] or \[N, C\]"):
        graph_to_healpix(graph, np.zeros(5))
    with pytest.raises(ValueError, match="no 'nside'"):
        graph_to_healpix(FramedGraph(x=torch.zeros(3, 1)))


def test_saved_graph_keeps_everything(tmp_path):
    maps = _random_map(2, fields=2, dtype=np.float32)
    graph = healpix_map_graph(maps)
    loaded = FramedGraph.load(graph.save(tmp_path / "g.pt"))
    assert loaded.nside == 2 and loaded.nest is True and loaded.field_names == graph.field_names
    assert np.array_equal(graph_to_healpix(loaded), maps)


def test_mask_file_in_another_ordering_and_cut_sky_files(tmp_path):
    nside = 4
    maps = _random_map(nside, fields=1)[0]
    keep_ring = np.arange(12 * nside**2) % 5 != 0
    hp.write_map(str(tmp_path / "nest.fits"), hp.reorder(maps, r2n=True), nest=True, dtype=np.float64)
    hp.write_map(str(tmp_path / "mask.fits"), keep_ring.astype(np.float32), nest=False, dtype=np.float32)
    graph = healpix_map_graph(tmp_path / "nest.fits", mask=tmp_path / "mask.fits")
    assert np.array_equal(graph_to_healpix(graph), np.where(keep_ring, maps, hp.UNSEEN))
    # a cut-sky file (INDXSCHM = 'EXPLICIT') lists only its observed pixels
    cut = np.where(keep_ring, maps, hp.UNSEEN)
    hp.write_map(str(tmp_path / "cut.fits"), cut, partial=True, dtype=np.float64)
    graph = healpix_map_graph(tmp_path / "cut.fits")
    assert graph.num_nodes == int(keep_ring.sum())
    assert np.array_equal(graph_to_healpix(graph), cut)
