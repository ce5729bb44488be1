r"""Windows of consecutive NESTED HEALPix pixels, and the two shifts of HEAL-SWIN.

In the NESTED ordering the pixels of a base pixel (a *face*) at ``nside = 2^n`` form an
:math:`n_{side} \times n_{side}` grid in Morton order, so every run of :math:`4^w` consecutive
pixels that starts at a multiple of :math:`4^w` is a :math:`2^w \times 2^w` square of one face:
a *window*. Unshifted windows need no gather at all; a *shifted* layout is a permutation of the
pixels followed by the same windowing (Carlsson et al., "HEAL-SWIN", CVPR 2024):

- **grid shift**: every pixel moves by :math:`s = 2^{w-1}` along the face axes, :math:`x` (towards
  a face's north-east corner) then :math:`y` (north-west). Along :math:`x` the faces form four
  chains ``8+i -> 4+(i+1)%4 -> (i+1)%4`` that run from the south pole to the north pole with their
  axes aligned across both seams; along :math:`y` the chains are ``8+i -> 4+i -> (i+3)%4``. A shift
  rolls each row of a chain, so a window that straddles a seam between two faces of a chain sees
  real neighbours, and only the pixels that roll past the end of a chain (from one pole to the
  other) are masked; those fill the corners of the windows at the poles and at the eight points
  where three faces meet, where no face continues the chain. The chains are the same for the four faces of each
  row, so the shift commutes exactly with the :math:`90^\circ` rotations about the polar axis.
- **ring shift** (the "spiral" shift): pixels move by :math:`s` places along the RING ordering,
  i.e. along the iso-latitude rings and from each ring into the next. Only the :math:`s` pixels
  that wrap from the south pole to the north pole are masked. It is not symmetric under the polar
  rotations (a ring's last pixels spill into the next ring at one longitude), see the tests.

A *label* per layout position says which pixels may attend to each other inside a window: equal
labels attend, different labels are masked. Partial skies use the windows that hold at least one
kept pixel; the positions of dropped pixels are padding, each with a label of its own.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

SHIFTS = (None, "grid", "ring")


def chains() -> tuple[np.ndarray, np.ndarray]:
    """The face chains along the face axes ``x`` and ``y``, ``[4, 3]`` each, from south to north.

    Row ``i`` of the ``x`` chains is ``(8+i, 4+(i+1)%4, (i+1)%4)``: the ``x = nside`` edge of each
    face is the ``x = 0`` edge of the next, with ``y`` unchanged (tested against healpy).
    """
    i = np.arange(4)
    x_chain = np.stack([8 + i, 4 + (i + 1) % 4, (i + 1) % 4], axis=1)
    y_chain = np.stack([8 + i, 4 + i, (i + 3) % 4], axis=1)
    return x_chain, y_chain


def _chain_tables(chain: np.ndarray):
    """For each face: its chain and its place along it."""
    which, place = np.empty(12, np.int64), np.empty(12, np.int64)
    for c, faces in enumerate(chain):
        which[faces], place[faces] = c, np.arange(3)
    return which, place


def _roll_along(chain, nside, face, along, shift):
    """Roll by ``shift`` along the chains: the face and coordinate each position reads from."""
    which, place = _chain_tables(chain)
    t = place[face] * nside + along + shift
    wrapped = t >= 3 * nside
    t %= 3 * nside
    return chain[which[face], t // nside], t % nside, wrapped


def grid_shift(nside: int, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """The grid-shifted layout of a full sky: ``(source, label)``, each ``[12 nside^2]``.

    Position ``p`` (a NESTED index) of the shifted layout holds pixel ``source[p]``.
    """
    import healpy as hp

    npix = 12 * nside * nside
    x, y, face = hp.pix2xyf(nside, np.arange(npix), nest=True)
    x_chain, y_chain = chains()
    # y first, read from the x-shifted layout: B[f, x, y] = A[g, x, y'] with A[g, x, y'] the pixel
    # s further along the x chain of g
    face_a, y_a, wrapped_y = _roll_along(y_chain, nside, face, y, shift)
    face_s, x_s, wrapped_x = _roll_along(x_chain, nside, face_a, x, shift)
    source = hp.xyf2pix(nside, x_s, y_a, face_s, nest=True)
    label = wrapped_x.astype(np.int64) + 2 * wrapped_y
    return source, label


def ring_shift(nside: int, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """The ring-shifted layout of a full sky: ``(source, label)``, each ``[12 nside^2]``."""
    import healpy as hp

    npix = 12 * nside * nside
    ring = hp.nest2ring(nside, np.arange(npix)) + shift
    wrapped = ring >= npix
    return hp.ring2nest(nside, ring % npix), wrapped.astype(np.int64)


@dataclass
class WindowPlan:
    r"""How to cut the tokens of one sky into windows of ``tokens`` positions.

    ``index`` (``None`` when the windows are the tokens in order) holds, for every position of the
    windows in use, the token it reads (``N``, one past the last token, for padding); the first
    ``clean`` windows need no mask, the others have ``allowed`` ``[W - clean, T, T]`` (``True``
    where query and key may meet); ``inverse`` ``[N]`` is each token's position.
    """

    tokens: int
    windows: int
    clean: int
    index: Tensor | None
    inverse: Tensor | None
    allowed: Tensor | None

    def to(self, device) -> "WindowPlan":
        move = (lambda t: None if t is None else t.to(device))
        return WindowPlan(self.tokens, self.windows, self.clean, move(self.index), move(self.inverse),
                          move(self.allowed))


def window_plan(nside: int, pixel: np.ndarray | None, window_order: int, shift: str | None,
                shift_size: int | None = None) -> WindowPlan:
    r"""The windows of :math:`4^w` tokens over the kept NESTED ``pixel`` (sorted; ``None``: all).

    Args:
        nside (int): resolution of the tokens.
        pixel: kept NESTED pixels, sorted ascending (``None`` for the full sky).
        window_order (int): :math:`w`; a window is a :math:`2^w \times 2^w` square of one face, so
            :math:`2^w \le n_{side}`.
        shift: ``None``, ``"grid"`` or ``"ring"``.
        shift_size (int, optional): pixels to shift by (default: :math:`2^{w-1}` for the grid,
            :math:`4^w / 2` for the ring shift).
    """
    if shift not in SHIFTS:
        raise ValueError(f"shift must be one of {SHIFTS}, got {shift!r}")
    side, npix = 1 << window_order, 12 * nside * nside
    if window_order < 0 or side > nside:
        raise ValueError(f"a window of 4^{window_order} pixels is a {side}x{side} square, larger than a "
                         f"base pixel at nside {nside}; use window_order <= {nside.bit_length() - 1}")
    tokens = side * side
    full = pixel is None or len(pixel) == npix
    if shift is None:
        source, label = np.arange(npix), np.zeros(npix, np.int64)
        if full:
            return WindowPlan(tokens, npix // tokens, npix // tokens, None, None, None)
    else:
        if shift_size is None:
            shift_size = side // 2 if shift == "grid" else tokens // 2
        if shift_size < 1:
            raise ValueError(f"a {shift} shift needs windows of more than one pixel (window_order >= 1)")
        source, label = (grid_shift if shift == "grid" else ring_shift)(nside, shift_size)
    n = npix if full else len(pixel)
    node = np.arange(npix) if full else np.full(npix, n, np.int64)
    if not full:
        node[pixel] = np.arange(n)
    index = node[source].reshape(-1, tokens)
    label = label.reshape(-1, tokens).copy()
    padding = index == n
    keep = ~padding.all(1)
    index, label, padding = index[keep], label[keep], padding[keep]
    label[padding] = -1 - np.nonzero(padding)[1]  # a padding position only sees itself
    masked = (label != label[:, :1]).any(1)
    order = np.argsort(masked, kind="stable")
    index, label = index[order], label[order]
    clean = int((~masked).sum())
    allowed = label[clean:, :, None] == label[clean:, None, :]
    flat = index.reshape(-1)
    inverse = np.empty(n, np.int64)
    real = flat < n
    inverse[flat[real]] = np.flatnonzero(real)
    identity = clean == len(index) and len(flat) == n and bool((flat == np.arange(n)).all())
    return WindowPlan(tokens, len(index), clean,
                      None if identity else torch.from_numpy(flat),
                      None if identity else torch.from_numpy(inverse),
                      torch.from_numpy(allowed) if clean < len(index) else None)
