import pytest
import torch

from meshgdl.datasets import (IsingDataset, ising_energy, ising_metropolis, onsager_energy,
                              onsager_magnetization)
from meshgdl.datasets.ising import ISING_CRITICAL_TEMPERATURE

from .monte_carlo import mean_and_error


@pytest.mark.parametrize("temperature", [1.5, 2.0, 3.0, 3.5])
def test_energy_and_magnetisation_match_onsager(temperature):
    chains = 32
    spins = ising_metropolis((16, 16), temperature, chains * 60, n_therm=100, n_decor=2,
                             chains=chains, seed=2)
    energy, err = mean_and_error(ising_energy(spins), chains)
    assert abs(energy - onsager_energy(temperature)) < 3 * err, (energy, err)
    m = spins.double().flatten(1).mean(1)
    if temperature < ISING_CRITICAL_TEMPERATURE:
        mean, err = mean_and_error(m.abs(), chains)
        assert abs(mean - onsager_magnetization(temperature)) < 3 * err, (mean, err)
    else:  # disordered: the magnetisation averages to zero and stays small
        mean, err = mean_and_error(m, chains)
        assert abs(mean) < 3 * err and float(m.abs().mean()) < 0.2


def test_onsager_formulas():
    # limits: ground state energy -2 and full magnetisation at low T; T_c where M vanishes
    assert abs(onsager_energy(0.2) + 2) < 1e-8 and abs(onsager_magnetization(0.2) - 1) < 1e-8
    assert onsager_magnetization(ISING_CRITICAL_TEMPERATURE) == 0
    assert onsager_magnetization(ISING_CRITICAL_TEMPERATURE * 0.999) < 0.6
    # the energy at T_c is -sqrt(2)
    assert abs(onsager_energy(ISING_CRITICAL_TEMPERATURE) + 2**0.5) < 1e-12
    assert abs(onsager_energy(ISING_CRITICAL_TEMPERATURE * (1 + 1e-9)) + 2**0.5) < 1e-6


def test_energy_of_known_configurations():
    up = torch.ones(1, 4, 6, dtype=torch.int8)
    check = (torch.arange(4)[:, None] + torch.arange(6)).remainder(2).mul(2).sub(1)[None]
    assert torch.allclose(ising_energy(up), torch.tensor([-2.0], dtype=torch.float64))
    assert torch.allclose(ising_energy(check), torch.tensor([2.0], dtype=torch.float64))


def test_reproducible_and_bad_input():
    a = ising_metropolis((4, 4), 2.0, 4, n_therm=3, chains=2, seed=1, start="hot")
    assert torch.equal(a, ising_metropolis((4, 4), 2.0, 4, n_therm=3, chains=2, seed=1, start="hot"))
    assert a.dtype == torch.int8 and set(a.unique().tolist()) <= {-1, 1}
    with pytest.raises(ValueError, match="even"):
        ising_metropolis((5, 4), 2.0, 1)
    with pytest.raises(ValueError, match="temperature"):
        ising_metropolis((4, 4), 0.0, 1)


def test_dataset(tmp_path):
    ds = IsingDataset(tmp_path, (4, 4), (1.5, 3.0), 3, n_therm=20, progress=False)
    assert len(ds) == 6
    assert ds[0].x.shape == (16, 1) and int(ds[0].y) == 1 and int(ds[5].y) == 0
    assert float(ds[4].temperature) == 3.0 and "link" not in ds[0]
    again = IsingDataset(tmp_path, (4, 4), (1.5, 3.0), 3, n_therm=20, progress=False)
    assert torch.equal(again[4].x, ds[4].x)
