import logging

import healpy as hp
import numpy as np
import pytest
import torch

from meshgdl import FramedGraph
from meshgdl.cli import main
from meshgdl.geometry import graph_to_healpix
from meshgdl.geometry.healpix_convert import convert_healpix, plot_graph_map
from tests.conftest import require_data


def test_convert_and_plot_wmap(tmp_path, capsys):
    path = require_data("healpy", "wmap_band_iqumap_r9_7yr_W_v4_udgraded32.fits")
    mask = require_data("healpy", "wmap_temperature_analysis_mask_r9_7yr_v4_udgraded32.fits")
    out = tmp_path / "wmap.pt"
    assert main(["convert", "healpix", str(path), "-o", str(out), "--field", "I_STOKES",
                 "--field", "2", "--mask", str(mask), "--quiet"]) == 0
    assert "wrote" in capsys.readouterr().out
    graph = FramedGraph.load(out)
    keep = hp.read_map(str(mask)) == 1
    maps = hp.read_map(str(path), field=(0, 2), dtype=None)
    assert graph.field_names == ["I_STOKES", "U_STOKES"] and graph.nest is True
    assert np.array_equal(graph_to_healpix(graph), np.where(keep, maps, hp.UNSEEN).astype(np.float32))
    png = tmp_path / "map.png"
    assert main(["plot", str(out), "-o", str(png), "--field", "U_STOKES"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    with pytest.raises(FileExistsError, match="overwrite"):
        plot_graph_map(out, png)
    assert main(["plot", str(out), "-o", str(png)]) == 2 and "--force" in capsys.readouterr().err
    assert main(["plot", str(out), "-o", str(png), "--force", "--min", "-0.3", "--max", "0.3"]) == 0
    with pytest.raises(ValueError, match="no field 'T'"):
        plot_graph_map(out, tmp_path / "b.png", field="T")


def test_convert_refuses_to_overwrite_and_orders_by_ring(tmp_path):
    maps = np.arange(48, dtype=np.float64)
    path = tmp_path / "m.fits"
    hp.write_map(str(path), maps, dtype=np.float64)
    out = tmp_path / "g.pt"
    graph = convert_healpix(path, out, nest=False, progress=False)
    assert graph.nest is False and np.array_equal(graph.x[:, 0].numpy(), maps)
    with pytest.raises(FileExistsError, match="overwrite"):
        convert_healpix(path, out, progress=False)
    assert convert_healpix(path, out, overwrite=True, progress=False).nest is True
    assert main(["convert", "healpix", str(path), "-o", str(out), "--nest", "--ring"]) == 2


def test_cli_reports_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.fits"
    bad.write_text("not fits")
    assert main(["convert", "healpix", str(bad), "-o", str(tmp_path / "x.pt")]) == 2
    assert "not a FITS file" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_cli_nonfinite_values_and_apodised_masks(tmp_path, capsys, caplog):
    maps = np.arange(48, dtype=np.float64)
    maps[[4, 5]] = np.inf, -np.inf
    path, mask = tmp_path / "inf.fits", tmp_path / "apodised.fits"
    hp.write_map(str(path), maps, dtype=np.float64)
    hp.write_map(str(mask), np.linspace(0, 1, 48), dtype=np.float64)
    out = tmp_path / "g.pt"
    assert main(["convert", "healpix", str(path), "-o", str(out), "--quiet"]) == 2
    assert "non-finite values at 2 pixels" in capsys.readouterr().err and not out.exists()
    with caplog.at_level(logging.WARNING, logger="meshgdl"):
        assert main(["convert", "healpix", str(path), "-o", str(out), "--quiet", "--nonfinite", "mask",
                     "--mask", str(mask)]) == 0
    assert "a file of 0 and 1" in caplog.text
    graph = FramedGraph.load(out)
    assert graph.nest is True and sorted(graph.x[:, 0].tolist()) == [p for p in range(1, 48) if p not in (4, 5)]


def test_convert_reads_dtype_names_and_refuses_integers(tmp_path):
    path = tmp_path / "m.fits"
    hp.write_map(path, np.arange(12 * 4**2, dtype=np.float64))
    graph = convert_healpix(path, tmp_path / "a.pt", dtype="torch.float64", progress=False)
    assert graph.frame.dtype == torch.float64
    with pytest.raises(ValueError, match="must be a floating dtype"):
        convert_healpix(path, tmp_path / "b.pt", dtype="int64", progress=False)
    assert not (tmp_path / "b.pt").exists()
