import math

import pytest
import torch

from meshgdl import groups, observables as obs
from meshgdl.datasets import LatticeGaugeDataset, exact_mean_plaquette_2d, wilson_metropolis
from meshgdl.datasets.lattice_gauge import _staples
from meshgdl.geometry import lattice_links

from .monte_carlo import mean_and_error


@pytest.mark.parametrize("group,beta,update", [
    ("U1", 0.5, "metropolis"), ("U1", 2.0, "metropolis"), ("U1", 5.0, "metropolis"),
    ("SU2", 1.0, "metropolis"), ("SU2", 3.0, "metropolis"), ("SU2", 6.0, "metropolis"),
    ("SU2", 1.0, "heatbath"), ("SU2", 3.0, "heatbath"), ("SU2", 6.0, "heatbath"),
])
def test_mean_plaquette_matches_the_exact_2d_result(group, beta, update):
    chains, shape = 32, (4, 4)
    u = wilson_metropolis(group, shape, beta, chains * 60, n_therm=50, n_decor=1, n_hits=4,
                          chains=chains, seed=11, update=update)
    mean, err = mean_and_error(obs.mean_plaquette(u), chains)
    exact = exact_mean_plaquette_2d(group, beta, volume=16)
    assert abs(mean - exact) < 3 * err, (mean, err, exact)
    assert err < 0.01  # the test has teeth


def _haar_mean_plaquette(group, beta):
    r"""<(1/n) Re tr P> of one plaquette with weight exp(beta (1/n) Re tr P) (the Wilson action),
    integrated over the group with its Haar measure, no Bessel functions: U(1) P = e^{it},
    measure dt / 2 pi; SU(2) P with eigenvalues e^{+-ia}, (1/2) tr P = cos a, measure
    (2 / pi) sin^2 a da on [0, pi] (Weyl)."""
    from scipy.integrate import quad

    lo, jacobian = (-math.pi, lambda t: 1.0) if group == "U1" else (0.0, lambda t: math.sin(t) ** 2)
    hi = math.pi
    # exp(beta (cos t - 1)) keeps the integrands bounded at large beta; the factor cancels
    weight = lambda t: math.exp(beta * (math.cos(t) - 1)) * jacobian(t)  # noqa: E731
    num = quad(lambda t: math.cos(t) * weight(t), lo, hi, epsabs=0, epsrel=1e-13, limit=200)[0]
    return num / quad(weight, lo, hi, epsabs=0, epsrel=1e-13, limit=200)[0]


def _u1_torus_mean_plaquette(beta, volume, points=256):
    """U(1) on a periodic 2D lattice of ``volume`` plaquettes: after gauge fixing the plaquette angles
    are independent except that they sum to 0 mod 2 pi, so <cos t_1> needs the density of the sum of
    the other volume - 1, a repeated circular convolution on a grid (exact for band-limited
    integrands; exp(beta cos t) is one to rounding at 256 points for beta <= 5)."""
    import numpy as np

    t = 2 * np.pi * np.arange(points) / points
    w = np.exp(beta * (np.cos(t) - 1))
    rest = np.zeros(points)
    rest[0] = 1.0                                 # the sum of no angles is 0
    for _ in range(volume - 1):
        rest = np.array([np.dot(w, np.roll(rest[::-1], s + 1)) for s in range(points)])  # (w * rest)(s)
        rest /= rest.max()
    rest_of_minus = rest[(-np.arange(points)) % points]          # the others must sum to -t_1
    return float(np.sum(np.cos(t) * w * rest_of_minus) / np.sum(w * rest_of_minus))


@pytest.mark.parametrize("group,beta", [("U1", 0.5), ("U1", 2.5), ("U1", 5.0), ("SU2", 1.0), ("SU2", 3.0), ("SU2", 6.0)])
def test_exact_2d_plaquette_is_the_haar_integral(group, beta):
    assert abs(exact_mean_plaquette_2d(group, beta) - _haar_mean_plaquette(group, beta)) < 1e-10


@pytest.mark.parametrize("beta", [0.5, 2.0, 5.0])
def test_exact_finite_volume_u1_plaquette_is_the_constrained_integral(beta):
    for volume in (4, 16):
        assert abs(exact_mean_plaquette_2d("U1", beta, volume=volume) - _u1_torus_mean_plaquette(beta, volume)) < 1e-10


def test_finite_volume_formula_tends_to_the_infinite_volume_one():
    for group, beta in [("U1", 2.0), ("SU2", 3.0)]:
        big = exact_mean_plaquette_2d(group, beta, volume=10**5)
        assert abs(big - exact_mean_plaquette_2d(group, beta)) < 1e-12
        assert abs(exact_mean_plaquette_2d(group, beta, volume=16) - big) > 1e-6


@pytest.mark.parametrize("update", ["metropolis", "heatbath"])
def test_4d_strong_coupling(update):
    # at small beta the 4D mean plaquette is I2/I1 up to O(beta^4) corrections from closed surfaces
    chains = 16
    u = wilson_metropolis("SU2", (2, 2, 2, 2), 0.5, chains * 20, n_therm=20, n_decor=1, n_hits=4,
                          chains=chains, seed=3, update=update)
    mean, err = mean_and_error(obs.mean_plaquette(u), chains)
    assert abs(mean - exact_mean_plaquette_2d("SU2", 0.5)) < 3 * err + 1e-3, (mean, err)


@pytest.mark.parametrize("group,shape", [("SU3", (4, 2, 2)), ("U1", (2, 4))])
def test_staples_give_the_local_action(group, shape):
    # S(U') - S(U) for one changed link equals -beta/n Re tr((U' - U) A), the Metropolis step
    gen = torch.Generator().manual_seed(0)
    d, n = len(shape), groups.group_size(group)
    u = groups.random_element(group, (1, *shape, d), generator=gen)
    mu, x = 1, (0, 1, 1)[:d]
    staple = _staples(u, mu, d, list(range(1, d + 1)))[(0, *x)]
    v = u.clone()
    v[(0, *x, mu)] = groups.random_element(group, generator=gen)
    delta = obs.wilson_action(v, 1.7) - obs.wilson_action(u, 1.7)
    trace = torch.trace((v[(0, *x, mu)] - u[(0, *x, mu)]) @ staple).real
    assert torch.allclose(delta, -1.7 / n * trace, atol=1e-12)


def test_reproducible_and_in_the_group():
    a = wilson_metropolis("SU2", (4, 2), 2.0, 6, n_therm=3, n_decor=1, chains=2, seed=5)
    b = wilson_metropolis("SU2", (4, 2), 2.0, 6, n_therm=3, n_decor=1, chains=2, seed=5)
    c = wilson_metropolis("SU2", (4, 2), 2.0, 6, n_therm=3, n_decor=1, chains=2, seed=6)
    assert a.shape == (6, 4, 2, 2, 2, 2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    groups.check_in_group(a, "SU2")
    hot = wilson_metropolis("U1", (2, 2), 1.0, 1, n_therm=0, n_decor=1, start="hot", seed=5)
    groups.check_in_group(hot, "U1")


def test_bad_input():
    with pytest.raises(ValueError, match="even"):
        wilson_metropolis("SU2", (5, 4), 2.0, 1)
    with pytest.raises(ValueError, match="positive"):
        wilson_metropolis("SU2", (0, 4), 2.0, 1)
    with pytest.raises(ValueError, match="beta"):
        wilson_metropolis("SU2", (4, 4), -1.0, 1)
    with pytest.raises(ValueError, match="start"):
        wilson_metropolis("SU2", (4, 4), 1.0, 1, start="warm")
    with pytest.raises(ValueError, match="heatbath"):
        wilson_metropolis("U1", (4, 4), 1.0, 1, update="heatbath")
    with pytest.raises(ValueError, match="U1 and SU2"):
        exact_mean_plaquette_2d("SU3", 1.0)


def test_dataset_is_generated_once_and_cached(tmp_path, monkeypatch):
    kw = dict(loop_sizes=((1, 1), (2, 2)), n_therm=5, n_decor=1, chains=2, progress=False)
    ds = LatticeGaugeDataset(tmp_path, "SU2", (4, 4), 2.0, 4, **kw)
    assert len(ds) == 4 and ds[0].y.shape == (16, 2)
    u = lattice_links(ds[1]).view(4, 4, 2, 2, 2)
    assert torch.allclose(ds[1].y[:, 1], obs.traced_wilson_loops(u, 2).flatten(), atol=1e-14)
    assert int(ds[3].chain) == 1 and float(ds[0].beta) == 2.0

    import meshgdl.datasets.lattice_gauge as mc
    monkeypatch.setattr(mc, "wilson_metropolis", lambda *a, **k: pytest.fail("regenerated"))
    again = LatticeGaugeDataset(tmp_path, "SU2", (4, 4), 2.0, 4, **kw)
    assert torch.equal(again[2].link, ds[2].link)
    monkeypatch.undo()
    other = LatticeGaugeDataset(tmp_path, "SU2", (4, 4), 2.5, 4, **kw)
    assert not torch.equal(other[2].link, ds[2].link)
    assert len(list((tmp_path / "processed").glob("SU2_*.pt"))) == 2


def test_kennedy_pendleton_samples_the_conditional_density():
    # a_0 has density sqrt(1 - a^2) exp(alpha a) on [-1, 1]: compare the mean with quadrature
    from scipy.integrate import quad

    from meshgdl.datasets.lattice_gauge import _kennedy_pendleton

    gen = torch.Generator().manual_seed(0)
    for alpha in (0.0, 0.7, 1.0, 3.0, 12.0):
        a0 = _kennedy_pendleton(torch.full((40000,), alpha, dtype=torch.float64), gen)
        assert float(a0.abs().max()) <= 1
        w = lambda a, p: a**p * (1 - a * a) ** 0.5 * torch.exp(torch.tensor(alpha * a)).item()  # noqa: E731
        exact = quad(w, -1, 1, args=(1,))[0] / quad(w, -1, 1, args=(0,))[0]
        assert abs(float(a0.mean()) - exact) < 3 * float(a0.std()) / 200, (alpha, float(a0.mean()), exact)
