import healpy as hp
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from meshgdl import FramedGraph
from meshgdl.cli import main
from meshgdl.geometry import graph_to_healpix, healpix_map_graph, read_healpix_fits
from meshgdl.geometry.healpix_nuniq import flatten_nuniq, nuniq_to_nested

TOP = 4  # the finest order of the random maps: nside 16


def _random_moc(seed=0, start=1, top=TOP):
    """Cells of a random refinement of the order-``start`` sphere, and the flat map they make at
    order ``top``, found pixel by pixel by looking up each pixel's ancestors (the oracle)."""
    rng = np.random.default_rng(seed)
    cells, todo = [], [(start, p) for p in range(12 * 4**start)]
    while todo:
        o, p = todo.pop()
        if o < top and rng.random() < 0.3:
            todo += [(o + 1, 4 * p + c) for c in range(4)]
        else:
            cells.append((o, p))
    rng.shuffle(cells)
    uniq = np.array([4 * 4**o + p for o, p in cells], dtype=np.int64)
    density = rng.random((2, len(cells)))
    value_of = {int(u): density[:, k] for k, u in enumerate(uniq)}
    flat = np.empty((2, 12 * 4**top))
    order_of = np.empty(12 * 4**top, dtype=int)
    for pix in range(12 * 4**top):
        o = next(o for o in range(top + 1) if 4 * 4**o + (pix >> 2 * (top - o)) in value_of)
        flat[:, pix] = value_of[4 * 4**o + (pix >> 2 * (top - o))]
        order_of[pix] = o
    return uniq, density, flat, order_of


def _write_skymap(path, uniq, density):
    """A multi-order sky map as ligo.skymap writes it."""
    table = Table({"UNIQ": uniq, "PROBDENSITY": density[0], "DISTMU": density[1]})
    table.meta.update(PIXTYPE="HEALPIX", ORDERING="NUNIQ", COORDSYS="C", MOCORDER=TOP, INDXSCHM="EXPLICIT")
    table.write(path, format="fits")
    return path


def test_nuniq_cells():
    order, ipix = nuniq_to_nested([4, 15, 16, 63, 64, 4 * 4**29, 16 * 4**29 - 1])
    assert order.tolist() == [0, 0, 1, 1, 2, 29, 29] and ipix.tolist() == [0, 11, 0, 47, 0, 0, 12 * 4**29 - 1]
    u = np.random.default_rng(0).integers(4, 16 * 4**12, 1000)
    order, ipix = nuniq_to_nested(u)
    assert np.array_equal(order, np.floor(np.log2(u / 4) / 2).astype(int)) and (ipix < 12 * 4**order).all()
    with pytest.raises(ValueError, match="3 is not a NUNIQ cell"):
        nuniq_to_nested([3])


def test_flattening_gives_back_the_fine_map():
    uniq, density, flat, order_of = _random_moc()
    maps, nside = flatten_nuniq(uniq, density)
    assert nside == 2**TOP and np.array_equal(maps, flat)
    assert np.array_equal(flatten_nuniq(uniq, density[0])[0], flat[0])
    # probability per pixel is split among children, so the total stays
    prob = density * hp.nside2pixarea(2 ** nuniq_to_nested(uniq)[0])
    fine_prob = flatten_nuniq(uniq, prob, extensive=True)[0]
    assert np.allclose(fine_prob, flat * hp.nside2pixarea(2**TOP), rtol=1e-14, atol=0)
    assert np.allclose(fine_prob.sum(1), prob.sum(1), rtol=1e-13)
    # coarser: densities average and probabilities add, as healpy.ud_grade in NESTED order
    coarse = flatten_nuniq(uniq, density, nside=4)[0]
    assert np.allclose(coarse, hp.ud_grade(flat, 4, order_in="NESTED", order_out="NESTED"), rtol=1e-13, atol=0)
    coarse_prob = flatten_nuniq(uniq, prob, nside=4, extensive=True)[0]
    assert np.allclose(coarse_prob, hp.ud_grade(fine_prob, 4, order_in="NESTED", order_out="NESTED", power=-2),
                       rtol=1e-13, atol=0)
    # finer than the finest cell: repeat
    finer = flatten_nuniq(uniq, density, nside=32)[0]
    assert np.array_equal(finer, hp.ud_grade(flat, 32, order_in="NESTED", order_out="NESTED"))


def test_partial_and_overlapping_cells():
    uniq, density, flat, _ = _random_moc(seed=1)
    part = np.arange(len(uniq)) % 4 != 0
    maps = flatten_nuniq(uniq[part], density[:, part])[0]
    covered = maps[0] != hp.UNSEEN
    assert np.array_equal(maps[:, covered], flat[:, covered]) and 0 < covered.sum() < covered.size
    with pytest.raises(ValueError, match="cells overlap"):
        flatten_nuniq(np.r_[uniq, 4 * 4**TOP + 5], np.r_[density[0], 1.0])
    graph = healpix_map_graph(maps, nest=True)
    assert graph.num_nodes == covered.sum() and np.array_equal(graph_to_healpix(graph, nest=True), maps)


def test_skymap_files_read_flat(tmp_path):
    uniq, density, flat, _ = _random_moc(seed=2)
    path = _write_skymap(tmp_path / "skymap.multiorder.fits", uniq, density)
    maps, nest, names = read_healpix_fits(path)
    assert nest and names == ["PROBDENSITY", "DISTMU"] and np.array_equal(maps, flat)
    graph = healpix_map_graph(path, field="DISTMU")
    assert graph.field_names == ["DISTMU"] and np.array_equal(graph.x[:, 0].numpy(), flat[1])
    coarse = healpix_map_graph(path, nside=4, graph_nest=False)
    assert np.allclose(graph_to_healpix(coarse), hp.ud_grade(flat, 4, order_in="NESTED", order_out="RING"),
                       rtol=1e-13, atol=0)
    out = tmp_path / "skymap.pt"
    assert main(["convert", "healpix", str(path), "-o", str(out), "--nside", "8", "--quiet"]) == 0
    saved = FramedGraph.load(out)
    assert saved.nside == 8 and saved.field_names == ["PROBDENSITY", "DISTMU"]
    assert np.allclose(graph_to_healpix(saved, nest=True), hp.ud_grade(flat, 8, order_in="NESTED", order_out="NESTED"),
                       rtol=1e-13, atol=0)
    with pytest.raises(ValueError, match="NUNIQ"):
        healpix_map_graph(np.zeros(len(uniq)))  # a table's values alone say how to flatten it
    flat_path = tmp_path / "flat.fits"
    hp.write_map(str(flat_path), flat[0], nest=True)
    with pytest.raises(ValueError, match="nside 16, not 8.*ud_grade"):
        healpix_map_graph(flat_path, nside=8)
    no_uniq = tmp_path / "bad.fits"
    hdu = fits.BinTableHDU(Table({"PROBDENSITY": density[0]}))
    hdu.header.update(PIXTYPE="HEALPIX", ORDERING="NUNIQ")
    hdu.writeto(no_uniq)
    with pytest.raises(ValueError, match="no UNIQ column"):
        read_healpix_fits(no_uniq)
