"""Window attention on HEALPix: against a dense attention with an explicit mask, the shifted masks,
and the exact symmetry of the polar rotations, in float64."""
import healpy as hp
import numpy as np
import pytest
import torch

from meshgdl.geometry import healpix_graph
from meshgdl.nn import HealpixSky, HealpixWindowAttention


def polar_rotation(nside):
    """``perm`` with ``x[perm]`` the map turned by 90 degrees about the polar axis, from healpy's
    pixel centres: pixel m of the turned map reads the pixel at g^-1 x_m."""
    theta, phi = hp.pix2ang(nside, np.arange(12 * nside * nside), nest=True)
    return torch.from_numpy(hp.ang2pix(nside, theta, phi - np.pi / 2, nest=True))


def dense_reference(layer, x, nside, pixel):
    """Unshifted windows as one dense attention over all kept tokens: the relative position bias
    from healpy's (x, y) of each pixel, and -inf between tokens of different windows."""
    b, n, c = x.shape
    h, d = layer.heads, c // layer.heads
    q, k, v = layer.qkv(x).view(b, n, 3, h, d).permute(2, 0, 3, 1, 4)
    px, py, face = hp.pix2xyf(nside, pixel.numpy(), nest=True)
    side = 1 << layer.window_order
    window = torch.from_numpy(pixel.numpy() // side ** 2)
    dx = torch.from_numpy(px[:, None] - px[None, :]) + side - 1
    dy = torch.from_numpy(py[:, None] - py[None, :]) + side - 1
    same = window[:, None] == window[None, :]
    bias = layer.bias_table[(dx * (2 * side - 1) + dy).clamp(0, (2 * side - 1) ** 2 - 1)].permute(2, 0, 1)
    if layer.cosine:
        q = torch.nn.functional.normalize(q, dim=-1) * layer.logit_scale.clamp(max=np.log(100.0)).exp()
        k = torch.nn.functional.normalize(k, dim=-1)
        logits = q @ k.transpose(-1, -2)
    else:
        logits = q @ k.transpose(-1, -2) / d ** 0.5
    logits = (logits + bias).masked_fill(~same, float("-inf"))
    out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)
    return layer.proj(out)


def layer(shift=None, order=2, cosine=False, channels=8, heads=2, seed=0):
    torch.manual_seed(seed)
    att = HealpixWindowAttention(channels, heads, order, shift, cosine=cosine).double()
    with torch.no_grad():
        att.bias_table.normal_()  # a visible bias, so that a wrong index shows
    return att


@pytest.mark.parametrize("cosine", [False, True])
@pytest.mark.parametrize("keep", [None, "random"])
def test_unshifted_windows_equal_dense_attention_with_a_block_mask(cosine, keep):
    nside = 8
    npix = 12 * nside * nside
    if keep is None:
        pixel = torch.arange(npix)
    else:
        pixel = torch.from_numpy(np.flatnonzero(np.random.default_rng(1).random(npix) < 0.4))
    sky = HealpixSky(nside, pixel)
    att = layer(cosine=cosine)
    x = torch.randn(2, len(pixel), 8, dtype=torch.float64)
    got = att(x, sky)
    torch.testing.assert_close(got, dense_reference(att, x, nside, pixel), atol=1e-12, rtol=0)
    # the full sky's unshifted windows are a reshape: no gather
    assert keep is not None or sky.windows(2, None).index is None


@pytest.mark.parametrize("shift", ["grid", "ring"])
@pytest.mark.parametrize("partial", [False, True])
def test_an_impulse_only_reaches_the_tokens_its_shifted_window_allows(shift, partial):
    nside = 8
    npix = 12 * nside * nside
    pixel = torch.arange(npix) if not partial else torch.from_numpy(
        np.flatnonzero(np.random.default_rng(2).random(npix) < 0.5))
    sky = HealpixSky(nside, pixel)
    att = layer(shift)
    plan = sky.windows(2, shift)
    n = len(pixel)
    index = plan.index.view(-1, plan.tokens)
    x = torch.randn(1, n, 8, dtype=torch.float64)
    base = att(x, sky)
    # every pixel sits in exactly one window
    assert torch.equal(torch.sort(index[index < n]).values, torch.arange(n))
    rng = np.random.default_rng(3)
    masked_tokens = index[plan.clean:][plan.allowed.logical_not().any(-1)]
    probes = list(rng.choice(n, 20, replace=False)) + list(masked_tokens[masked_tokens < n][:20].tolist())
    for j in probes:
        y = x.clone()
        y[0, j] += 1.0
        changed = set(torch.nonzero((att(y, sky) - base).abs().amax(-1)[0] > 1e-13).squeeze(1).tolist())
        w, t = divmod(int(plan.inverse[j]), plan.tokens)
        row = index[w]
        ok = torch.ones(plan.tokens, dtype=torch.bool) if w < plan.clean else plan.allowed[w - plan.clean, :, t]
        allowed = set(row[ok & (row < n)].tolist())
        assert changed == allowed, (j, sorted(changed - allowed), sorted(allowed - changed))


@pytest.mark.parametrize("shift", [None, "grid"])
@pytest.mark.parametrize("cut", [False, True])
def test_window_attention_commutes_with_the_polar_rotation(shift, cut):
    nside = 8
    perm = polar_rotation(nside)
    if cut:  # a latitude band the rotation keeps
        z = hp.pix2vec(nside, np.arange(12 * nside * nside), nest=True)[2]
        keep = np.abs(z) < 0.8
        graph = healpix_graph(nside, mask=keep, dtype=torch.float64)
        node = torch.full((12 * nside * nside,), -1, dtype=torch.long)
        node[graph.pixel] = torch.arange(graph.num_nodes)
        perm = node[perm[graph.pixel]]
        assert bool((perm >= 0).all())
    else:
        graph = healpix_graph(nside, dtype=torch.float64)
    att = layer(shift)
    x = torch.randn(3, graph.num_nodes, 8, dtype=torch.float64)
    torch.testing.assert_close(att(x[:, perm], graph), att(x, graph)[:, perm], atol=1e-12, rtol=0)


def test_the_ring_shift_breaks_the_polar_symmetry_by_a_measured_amount():
    nside = 8
    perm = polar_rotation(nside)
    sky = HealpixSky(nside)
    x = torch.randn(1, 12 * nside * nside, 8, dtype=torch.float64)
    att = layer("ring")
    with torch.no_grad():
        y = att(x, sky)
        moved = att(x[:, perm], sky)
    err = (moved - y[:, perm]).abs()
    broken = err.amax(-1)[0] > 1e-12
    # only the windows where the roll runs from one ring into the next differ
    assert 0.05 < broken.double().mean() < 0.8
    assert float(err.max() / y.abs().max()) > 1e-3
    print(f"ring shift: {float(broken.double().mean()):.1%} of pixels differ, by up to "
          f"{float(err.max() / y.abs().max()):.2e} of the output's scale")


def test_batches_permute_and_single_maps_agree():
    sky = HealpixSky(4)
    att = layer("grid", order=1)
    x = torch.randn(4, 192, 8, dtype=torch.float64)
    y = att(x, sky)
    torch.testing.assert_close(att(x[[2, 0, 3, 1]], sky), y[[2, 0, 3, 1]], atol=1e-13, rtol=0)
    torch.testing.assert_close(att(x[1], sky), y[1], atol=1e-13, rtol=0)


def test_nside_1_has_one_token_windows_and_errors_are_clear():
    sky = HealpixSky(1)
    att = layer(None, order=0)
    x = torch.randn(12, 8, dtype=torch.float64)
    v = att.qkv(x)[:, 16:]
    torch.testing.assert_close(att(x, sky), att.proj(v), atol=1e-13, rtol=0)
    with pytest.raises(ValueError, match="larger than a base pixel"):
        layer(None, order=1)(x, sky)
    with pytest.raises(ValueError, match="window_order >= 1"):
        HealpixWindowAttention(8, 2, 0, "grid")
    with pytest.raises(ValueError, match="RING order"):
        att(x, healpix_graph(1, nest=False))
    with pytest.raises(ValueError, match="12"):
        att(torch.randn(13, 8), sky)
    assert repr(att) == "HealpixWindowAttention(8, heads=2, window_order=0, shift=None)"


@pytest.mark.parametrize("shift", [None, "grid", "ring"])
@pytest.mark.parametrize("cosine", [False, True])
def test_the_fused_and_the_explicit_softmax_paths_agree(shift, cosine):
    # on a CPU, a forward without gradients runs SDPA, one with gradients the explicit softmax
    nside = 4
    pixel = torch.from_numpy(np.flatnonzero(np.random.default_rng(2).random(12 * nside ** 2) < 0.6))
    sky = HealpixSky(nside, pixel)
    att = layer(shift, order=1, cosine=cosine)
    x = torch.randn(3, len(pixel), 8, dtype=torch.float64)
    with torch.no_grad():
        fused = att(x, sky)
    torch.testing.assert_close(att(x, sky), fused, atol=1e-12, rtol=0)


@pytest.mark.parametrize("shift", ["grid", "ring"])
@pytest.mark.parametrize("partial", [False, True])
def test_gradients_through_the_window_gathers_match_finite_differences(shift, partial):
    nside = 2
    npix = 12 * nside ** 2
    pixel = torch.arange(npix) if not partial else torch.from_numpy(
        np.flatnonzero(np.random.default_rng(3).random(npix) < 0.6))
    sky = HealpixSky(nside, pixel)
    att = layer(shift, order=1, channels=4)
    x = torch.randn(2, len(pixel), 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: att(x, sky), (x,), fast_mode=True)
