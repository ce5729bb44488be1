r"""Rotation-equivariance error of spherical layers on HEALPix, DeepSphere's measure (Defferrard et al. 2020):

.. math::
    E = \mathbb{E}_{R, f}\left[\left(\frac{\lVert R\,F f - F\,R f\rVert}{\lVert F f\rVert}\right)^2\right]

over Haar-random rotations :math:`R` and random band-limited maps :math:`f` (Gaussian spherical
harmonic coefficients, flat spectrum up to :math:`\ell_\max` = nside, scaled to unit RMS). Maps,
inputs and outputs alike, are rotated through their spherical harmonics with healpy's
``Rotator.rotate_map_alms`` (one linear operator on both sides, so a pointwise layer scores 0 to
round-off). Every output channel is rotated as a scalar map; the layers have random weights and
read and write scalars:

* DeepSphere's filter: PyG ``ChebConv`` of order K = 8 on the Laplacian with Gaussian weights;
* two GemConv layers, scalars -> frequencies 0, 1, 2 -> scalars (anisotropic kernels);
* two IsoConv layers (isotropic kernels);
* a pointwise embedding and one HEAL-SWIN block (windowed attention, not equivariant).

    PYTHONPATH=. python examples/spherical_equivariance.py            # nside 16, 32, 64
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from spherical_models import ChebLayer, add_deepsphere_weights  # noqa: E402


def random_rotation(rng: np.random.Generator):
    """A Haar-random rotation as healpy's Rotator (ZYZ Euler angles)."""
    import healpy as hp
    from scipy.spatial.transform import Rotation

    angles = Rotation.random(random_state=rng).as_euler("ZYZ")
    return hp.Rotator(rot=angles, deg=False, eulertype="ZYZ")


def rotate_nested(maps: np.ndarray, rot) -> np.ndarray:
    """Rotate NESTED maps ``[N, C]`` channel by channel through their harmonics (lmax = 3 nside - 1)."""
    import healpy as hp

    ring = hp.reorder(maps.T, n2r=True)
    out = np.stack([rot.rotate_map_alms(m, use_pixel_weights=False) for m in np.atleast_2d(ring)])
    return hp.reorder(out, r2n=True).reshape(maps.T.shape).T


def equivariance_error(layer, nside: int, samples: int = 4, seed: int = 0) -> float:
    r"""DeepSphere's :math:`E` for ``layer``: a callable from NESTED maps ``[N, 1]`` (float64 numpy)
    to ``[N, C]``, over ``samples`` pairs of a random rotation and a random map band-limited at
    :math:`\ell_\max` = nside."""
    import healpy as hp

    rng = np.random.default_rng(seed)
    lmax = nside
    ratios = []
    for _ in range(samples):
        alm = (rng.standard_normal(hp.Alm.getsize(lmax)) + 1j * rng.standard_normal(hp.Alm.getsize(lmax)))
        alm[:lmax + 1] = alm[:lmax + 1].real  # m = 0 coefficients of a real map are real
        f = hp.reorder(hp.alm2map(alm, nside, lmax=lmax), r2n=True)[:, None]
        f /= np.sqrt(np.mean(f ** 2))  # unit RMS at every nside, so that layers that are not linear see one input scale
        rot = random_rotation(rng)
        out = np.asarray(layer(f))
        diff = rotate_nested(out, rot) - np.asarray(layer(rotate_nested(f, rot)))
        ratios.append((np.linalg.norm(diff) / np.linalg.norm(out)) ** 2)
    return float(np.mean(ratios))


def torch_layer(module: nn.Module, graph):
    """Wrap a module ``(x [N, C], graph) -> [N, C']`` as a numpy map-to-map function in float64."""
    module = module.double().eval()

    @torch.no_grad()
    def apply(f):
        return module(torch.from_numpy(np.ascontiguousarray(f)), graph).numpy()
    return apply


class Stack(nn.Module):
    def __init__(self, *layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x, graph):
        for layer in self.layers:
            x = layer(x, graph)
        return x


class SwinBlockLayer(nn.Module):
    """A pointwise embedding 1 -> C and one HEAL-SWIN block (windows of 4^2 pixels, no shift)."""

    def __init__(self, channels: int = 8):
        super().__init__()
        from meshgdl.nn import HealSwinBlock

        self.embed = nn.Linear(1, channels)
        self.block = HealSwinBlock(channels, 2, 2)

    def forward(self, x, graph):
        return self.block(self.embed(x)[None], graph)[0]


def layers(graph, seed: int = 0) -> dict:
    from meshgdl.nn import FieldType, GemConv, IsoConv

    torch.manual_seed(seed)
    hidden = FieldType([4, 4, 4])
    return {
        "DeepSphere Chebyshev, K = 8": ChebLayer(1, 4, order=8),
        "GemConv x 2 (frequencies 0-2)": Stack(GemConv(FieldType.scalars(1), hidden),
                                               GemConv(hidden, FieldType.scalars(4))),
        "IsoConv x 2": Stack(IsoConv(1, 4), IsoConv(4, 4)),
        "HEAL-SWIN block": SwinBlockLayer(),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nsides", type=int, nargs="+", default=[16, 32, 64], help="resolutions (default: 16 32 64)")
    p.add_argument("--samples", type=int, default=8, help="(rotation, map) pairs per entry (default: 8)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    p.add_argument("--out", type=Path, default=Path("results/spherical_images"), help="results folder")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from meshgdl.geometry import healpix_graph
    from meshgdl.provenance import run_line, run_record

    record = run_record()
    table: dict[str, dict[int, float]] = {}
    for nside in args.nsides:
        graph = add_deepsphere_weights(healpix_graph(nside, dtype=torch.float64))
        graph.cheb_weight = graph.cheb_weight.double()
        for name, module in layers(graph).items():
            table.setdefault(name, {})[nside] = equivariance_error(torch_layer(module, graph), nside, args.samples)
            print(f"nside {nside:>3}  {name:<32} E = {table[name][nside]:.3e}", flush=True)
    lines = ["| layer (random weights) | " + " | ".join(f"nside {n}" for n in args.nsides) + " |",
             "|---|" + "---|" * len(args.nsides)]
    lines += [f"| {name} | " + " | ".join(f"{v[n]:.2e}" for n in args.nsides) + " |" for name, v in table.items()]
    md = ("Rotation-equivariance error E = mean (‖R F f − F R f‖ / ‖F f‖)², over "
          f"{args.samples} random rotations and maps band-limited at ℓ ≤ nside.\n\n" + "\n".join(lines)
          + "\n\n" + run_line(record))
    print("\n" + md)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "equivariance_error.md").write_text(md + "\n")
    (args.out / "equivariance_error.json").write_text(json.dumps(
        {"samples": args.samples, "error": {k: {str(n): e for n, e in v.items()} for k, v in table.items()},
         "run": record}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
