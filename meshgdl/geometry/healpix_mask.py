"""Which HEALPix pixels to keep: ``UNSEEN`` values, NaN and infinities, and masks.

One rule for ``UNSEEN`` everywhere a map is read or converted, healpy's own (``healpy.mask_bad``):
a value :math:`v` is unseen when :math:`|v - \\mathrm{UNSEEN}| \\le 10^{-8} + 10^{-5}\\,|\\mathrm{UNSEEN}|`,
so a float32 map cast to float64 (whose ``UNSEEN`` became ``-1.6375000e30 + 3.7e21``) keeps its
holes. Nothing here imports healpy.
"""
from __future__ import annotations

import logging
import math

import numpy as np
import torch

log = logging.getLogger("meshgdl")

UNSEEN = -1.6375e30  # healpy.UNSEEN
_UNSEEN_TOL = 1e-8 + 1e-5 * abs(UNSEEN)  # healpy.mask_bad's atol + rtol * |badval|
_NONFINITE = ("raise", "mask")


def unseen_pixels(maps) -> np.ndarray:
    r"""``True`` where a value is ``healpy.UNSEEN`` by healpy's tolerance, in any dtype.

    Args:
        maps: ``[npix]`` or ``[F, npix]`` numbers.

    Returns:
        A boolean array of the same shape: :math:`|v - \mathrm{UNSEEN}| \le 10^{-8} +
        10^{-5}\,|\mathrm{UNSEEN}|`, computed in float64 (``healpy.mask_bad``). Integer maps have
        none. float16 cannot hold ``UNSEEN`` (it becomes ``-inf``; see :func:`drop_bad_pixels`).
    """
    m = np.asarray(maps)
    if not np.issubdtype(m.dtype, np.floating):
        return np.zeros(m.shape, dtype=bool)
    return np.abs(m.astype(np.float64, copy=False) - UNSEEN) <= _UNSEEN_TOL


def drop_bad_pixels(maps: np.ndarray, keep: np.ndarray, nonfinite: str = "raise") -> np.ndarray:
    """Pixels to keep once ``UNSEEN``, NaN and infinite values are accounted for: ``[npix]`` bool.

    A pixel is dropped where any field is ``UNSEEN``. NaN, ``+inf`` and ``-inf`` at a pixel that
    ``keep`` still keeps raise a ``ValueError`` that counts them (``nonfinite="raise"``) or drop
    the pixel (``nonfinite="mask"``).

    Args:
        maps: ``[F, npix]`` values.
        keep: ``[npix]`` bool, the pixels kept so far (a user mask); only these are checked.
        nonfinite (str): ``"raise"`` or ``"mask"``. (default: ``"raise"``)
    """
    if nonfinite not in _NONFINITE:
        raise ValueError(f"nonfinite must be 'raise' or 'mask', got {nonfinite!r}")
    keep = keep & ~unseen_pixels(maps).any(0)
    if not np.issubdtype(maps.dtype, np.floating):
        return keep
    bad = ~np.isfinite(maps).all(0) & keep
    if not bad.any():
        return keep
    if nonfinite == "mask":
        return keep & ~bad
    sub = maps[:, bad]
    counts = [(name, int(fn(sub).any(0).sum())) for name, fn in
              (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf))]
    what = ", ".join(f"{name} at {k}" for name, k in counts if k)
    hint = ""
    if maps.dtype.itemsize < 4 and counts[2][1]:
        hint = " (healpy.UNSEEN does not fit in float16 and becomes -inf: read or cast the map to float32)"
    raise ValueError(f"the map holds non-finite values at {int(bad.sum())} pixels ({what}; first: pixel "
                     f"{int(bad.argmax())}){hint}; pass nonfinite='mask' (--nonfinite mask) to drop those "
                     "pixels, set them to healpy.UNSEEN, or fill them")


def keep_from_mask(mask, npix: int, what: str = "mask") -> np.ndarray:
    """Which pixels a mask keeps: ``[npix]`` bool.

    A boolean array keeps its ``True`` pixels (``1`` marks usable sky, as in WMAP and Planck
    analysis masks). A numpy masked array (``healpy.ma``) keeps its unmasked pixels. A numeric map
    keeps the pixels where it is ``> 0``: 0, negative values and ``UNSEEN`` drop. A mask with
    values between 0 and 1 (an apodised mask) or below 0 (other than ``UNSEEN``) is thresholded
    the same way, with a logged warning: choose another threshold with a boolean,
    ``mask=apodised > 0.5``. NaN in a mask is an error.
    """
    if isinstance(mask, np.ma.MaskedArray):
        return ~np.ma.getmaskarray(mask).reshape(-1)
    m = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if m.ndim != 1 or m.shape[0] != npix:
        nside = math.isqrt(max(m.shape[-1] // 12, 0)) if m.ndim else 0
        hint = f" (a map of nside {nside})" if m.ndim and 12 * nside * nside == m.shape[-1] else ""
        raise ValueError(f"{what} must have one value per pixel, {npix} values, got shape {list(m.shape)}{hint}; "
                         "a mask is boolean (True keeps) or numeric (> 0 keeps)")
    if m.dtype == bool:
        return m.copy()
    if not np.issubdtype(m.dtype, np.number):
        raise TypeError(f"{what} must be boolean (True keeps) or numeric (> 0 keeps), got dtype {m.dtype}")
    if np.issubdtype(m.dtype, np.floating) and np.isnan(m).any():
        raise ValueError(f"{what} holds NaN values (first at pixel {int(np.isnan(m).argmax())}); a mask is "
                         "boolean (True keeps) or numeric (> 0 keeps): set the pixels to drop to 0")
    keep = m > 0
    odd = ((m > 0) & (m < 1)) | ((m < 0) & ~unseen_pixels(m))
    if odd.any():
        log.warning("%s is not a 0/1 mask (%d pixels lie between 0 and 1 or below 0, e.g. an apodised mask): "
                    "kept the %d pixels where it is > 0; for another threshold pass a boolean, e.g. "
                    "mask=apodised > 0.5 (for `meshgdl convert healpix --mask`, a file of 0 and 1)",
                    what, int(odd.sum()), int(keep.sum()))
    return keep
