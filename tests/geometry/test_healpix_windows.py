"""The windows and shifts of HEAL-SWIN against healpy's own geometry."""
import healpy as hp
import numpy as np
import pytest

from meshgdl.geometry.healpix_windows import chains, grid_shift, ring_shift, window_plan


def centres(nside, pixel):
    return np.stack(hp.pix2vec(nside, pixel, nest=True), axis=-1)


@pytest.mark.parametrize("nside", [2, 8])
def test_chains_continue_each_face_axis_into_the_next_face(nside):
    # the pixel beyond the last one of a row, found from the geometry: the neighbour nearest to
    # the straight continuation 2 p_last - p_before_last
    for axis, chain in enumerate(chains()):
        for faces in chain:
            for f, g in zip(faces[:-1], faces[1:]):
                for t in range(nside):
                    last = [nside - 1, t] if axis == 0 else [t, nside - 1]
                    before = [nside - 2, t] if axis == 0 else [t, nside - 2]
                    p = hp.xyf2pix(nside, *last, f, nest=True)
                    ahead = 2 * centres(nside, p) - (centres(nside, hp.xyf2pix(nside, *before, f, nest=True))
                                                    if nside > 1 else 0)
                    nb = hp.get_all_neighbours(nside, p, nest=True)
                    nb = nb[nb >= 0]
                    best = nb[np.argmax(centres(nside, nb) @ ahead)]
                    expect = [0, t] if axis == 0 else [t, 0]
                    assert list(hp.pix2xyf(nside, best, nest=True)) == [*expect, g]


@pytest.mark.parametrize("shift", [grid_shift, ring_shift])
@pytest.mark.parametrize("nside", [1, 2, 8, 32])
def test_a_shift_moves_every_pixel_exactly_once(shift, nside):
    source, label = shift(nside, max(1, nside // 2))
    assert np.array_equal(np.sort(source), np.arange(12 * nside * nside))
    assert set(np.unique(label)) <= {0, 1, 2, 3}


def window_diameters(nside, source, label, tokens):
    """The largest angle between two pixels of a window that may attend to each other."""
    xyz = centres(nside, source).reshape(-1, tokens, 3)
    cos = np.einsum("wtc,wuc->wtu", xyz, xyz)
    lab = label.reshape(-1, tokens)
    cos[lab[:, :, None] != lab[:, None, :]] = 1.0
    return np.arccos(np.clip(cos.min(axis=(1, 2)), -1, 1))


@pytest.mark.parametrize("nside,order", [(8, 1), (16, 2), (32, 3)])
def test_shifted_windows_only_join_pixels_that_are_close(nside, order):
    # a grid-shifted window that joins pixels across a seam stays as compact as an unshifted one
    # (measured: 0.92-0.96 of the largest unshifted window): the chains continue each face into
    # its true neighbour, and what rolls past a pole is masked. A ring-shifted window follows the
    # rings, so it is about twice as wide (measured 1.6-2.3x), but never spans the sky.
    tokens, npix = 4 ** order, 12 * nside * nside
    plain = window_diameters(nside, np.arange(npix), np.zeros(npix, int), tokens).max()
    for shift, size, bound in ((grid_shift, 1 << (order - 1), 1.0), (ring_shift, tokens // 2, 2.5)):
        source, label = shift(nside, size)
        worst = window_diameters(nside, source, label, tokens).max()
        assert worst < bound * plain, (shift.__name__, worst, plain)
    # without the mask, the wrapped pixels would join the two poles
    source, label = grid_shift(nside, 1 << (order - 1))
    assert window_diameters(nside, source, np.zeros_like(label), tokens).max() > 2.0


def test_the_grid_shift_commutes_with_the_polar_rotation():
    from meshgdl.geometry import healpix_rotation

    nside = 16
    source, label = grid_shift(nside, 2)
    perm, _ = healpix_rotation(nside)
    perm = perm.numpy()
    # rotating the map then shifting equals shifting then rotating: source[perm] == perm[source]
    inv = np.argsort(perm)
    assert np.array_equal(inv[source[perm]], source)
    assert np.array_equal(label[perm], label)


def test_window_plans_cover_each_kept_pixel_once_and_refuse_large_windows():
    nside = 8
    rng = np.random.default_rng(0)
    pixel = np.flatnonzero(rng.random(12 * nside * nside) < 0.3)
    for shift in (None, "grid", "ring"):
        plan = window_plan(nside, pixel, 2, shift)
        index = plan.index.numpy()
        real = index[index < len(pixel)]
        assert np.array_equal(np.sort(real), np.arange(len(pixel)))
        assert np.array_equal(index[plan.inverse.numpy()], np.arange(len(pixel)))
        # padding positions only ever see themselves
        pads = index.reshape(-1, plan.tokens)[plan.clean:] == len(pixel)
        allowed = plan.allowed.numpy()
        w, t = np.nonzero(pads)
        assert allowed[w, t].sum() == len(w) and allowed[w, :, t].sum() == len(w)
    with pytest.raises(ValueError, match="larger than a base pixel"):
        window_plan(4, None, 3, None)
    with pytest.raises(ValueError, match="window_order >= 1"):
        window_plan(4, None, 0, "grid")
