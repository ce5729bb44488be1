import subprocess
from types import SimpleNamespace

import pytest

from meshgdl.datasets import fetch as fetch_module
from meshgdl.datasets.fetch import SOURCES, Source


def _fake_apt(tmp_path, fail_download: int):
    """A stand-in for subprocess.run: `apt-get download` fails ``fail_download`` times, then leaves a .deb."""
    calls = []

    def run(cmd, check=False, cwd=None, **kwargs):
        calls.append(cmd)
        rc = 0
        if cmd[:2] == ["apt-get", "download"]:
            if sum(c[:2] == ["apt-get", "download"] for c in calls) <= fail_download:
                rc = 100
            else:
                (tmp_path / "pkg_1_all.deb").write_bytes(b"")
        if check and rc:
            raise subprocess.CalledProcessError(rc, cmd)
        return SimpleNamespace(returncode=rc)

    return run, calls


@pytest.mark.parametrize("failures, expect", [
    (0, [["apt-get", "download", "healpy-data=1.16.1-1"]]),
    (1, [["apt-get", "download", "healpy-data=1.16.1-1"], ["apt-get", "update"], ["apt-get", "download", "healpy-data=1.16.1-1"]]),
    (2, [["apt-get", "download", "healpy-data=1.16.1-1"], ["apt-get", "update"], ["apt-get", "download", "healpy-data=1.16.1-1"],
         ["apt-get", "download", "healpy-data"]]),
])
def test_apt_download_updates_lists_when_needed(tmp_path, monkeypatch, failures, expect):
    run, calls = _fake_apt(tmp_path, failures)
    monkeypatch.setattr(fetch_module.subprocess, "run", run)
    fetch_module._download(Source("apt", "healpy-data=1.16.1-1"), tmp_path)
    assert [c for c in calls if c[0] == "apt-get"] == expect
    assert calls[-1][:2] == ["dpkg-deb", "-x"]


def test_healpy_source_is_pinned():
    source = SOURCES["healpy"]
    assert source.kind == "apt" and source.package == "healpy-data=1.16.1-1"
    assert all(len(sha) == 64 for _, sha in source.files.values())
    assert {name for name, _ in source.files.values()} >= {
        "wmap_band_iqumap_r9_7yr_W_v4_udgraded32.fits", "wmap_temperature_analysis_mask_r9_7yr_v4_udgraded32.fits"}
