"""Draw the HEAL-SWIN windows on a Mollweide view: unshifted, grid-shifted and ring-shifted.

    PYTHONPATH=. python docs/figures/heal_swin_windows.py [--nside 16] [--window-order 2]

Each window gets a colour; in a shifted window the pixels that the mask separates from the rest
(those rolled past a pole) are hatched dark. Writes docs/figures/heal_swin_windows.png.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def window_maps(nside: int, order: int):
    from meshgdl.geometry.healpix_windows import window_plan

    npix, tokens = 12 * nside * nside, 4 ** order
    rng = np.random.default_rng(0)
    colour = rng.permutation(npix // tokens).astype(float)
    maps = {}
    for shift in (None, "grid", "ring"):
        plan = window_plan(nside, np.arange(npix), order, shift) if shift else None
        value = np.empty(npix)
        if plan is None:
            value[:] = colour[np.arange(npix) // tokens]
        else:
            index = plan.index.numpy().reshape(-1, tokens)
            value[index] = colour[np.arange(len(index))][:, None]
            if plan.allowed is not None:  # pixels cut off from the first token of their window
                lone = ~plan.allowed[:, 0, :].numpy()
                value[index[plan.clean:][lone]] = np.nan
        maps[shift] = value
    return maps


def main():
    import healpy as hp
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nside", type=int, default=16)
    parser.add_argument("--window-order", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).with_suffix(".png")))
    args = parser.parse_args()
    maps = window_maps(args.nside, args.window_order)
    fig = plt.figure(figsize=(15, 3.6))
    titles = {None: "windows (4^w consecutive NESTED pixels)", "grid": "grid shift", "ring": "ring shift"}
    cmap = plt.get_cmap("tab20").copy()
    cmap.set_bad("black")
    for i, (shift, value) in enumerate(maps.items()):
        m = np.where(np.isnan(value), hp.UNSEEN, value % 20)
        hp.mollview(m, nest=True, fig=fig.number, sub=(1, 3, i + 1), cmap=cmap, cbar=False,
                    title=f"{titles[shift]}, nside {args.nside}", min=0, max=19, badcolor="black")
        hp.graticule(dpar=30, dmer=45, alpha=0.3)
    fig.savefig(args.out, dpi=110, bbox_inches="tight")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
