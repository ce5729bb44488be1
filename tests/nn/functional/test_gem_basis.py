import math

import pytest
import torch

from meshgdl.graph import rotation_matrix
from meshgdl.nn.functional.gem_basis import kernel_basis, num_basis, num_self_basis, self_basis


def rho(k: int, p: torch.Tensor) -> torch.Tensor:
    """``[T]`` -> ``[T, d, d]``: the frequency-k representation."""
    return torch.ones(len(p), 1, 1, dtype=p.dtype) if k == 0 else rotation_matrix(k * p)


PAIRS = [(m, n) for m in range(4) for n in range(4)]


@pytest.mark.parametrize("m,n", PAIRS)
def test_each_basis_kernel_satisfies_the_gauge_constraint(m, n):
    gen = torch.Generator().manual_seed(m * 10 + n)
    theta = 2 * math.pi * torch.rand(50, generator=gen, dtype=torch.float64)
    p = 2 * math.pi * torch.rand(50, generator=gen, dtype=torch.float64)
    lhs = kernel_basis(m, n, theta - p)
    rhs = rho(n, -p) @ kernel_basis(m, n, theta) @ rho(m, p)
    assert lhs.shape == (num_basis(m, n), 50, 1 if n == 0 else 2, 1 if m == 0 else 2)
    assert torch.allclose(lhs, rhs, atol=1e-13, rtol=0)


def null_space_dim(a: torch.Tensor) -> int:
    s = torch.linalg.svdvals(a)
    return a.shape[1] - int((s > 1e-9 * s.max()).sum())


@pytest.mark.parametrize("m,n", PAIRS)
def test_basis_spans_the_solution_space_of_the_constraint(m, n):
    # Unknowns: K at T grid angles. Constraints: K(t_a - t_b) = rho_n(-t_b) K(t_a) rho_m(t_b).
    t = 16
    angles = 2 * math.pi * torch.arange(t, dtype=torch.float64) / t
    dn, dm = (1 if n == 0 else 2), (1 if m == 0 else 2)
    size = dn * dm
    rows = []
    for a in range(t):
        for b in range(t):
            row = torch.zeros(size, t * size, dtype=torch.float64)
            c = (a - b) % t
            row[:, c * size:(c + 1) * size] += torch.eye(size, dtype=torch.float64)
            # vec(A K B) = (A kron B^T) vec(K) for row-major vec
            lin = torch.kron(rho(n, -angles[b:b + 1])[0], rho(m, angles[b:b + 1])[0].T.contiguous())
            row[:, a * size:(a + 1) * size] -= lin
            rows.append(row)
    dim = null_space_dim(torch.cat(rows))
    basis = kernel_basis(m, n, angles).reshape(num_basis(m, n), -1)   # sampled, flattened like the unknowns
    assert dim == num_basis(m, n) == dn * dm
    assert torch.linalg.matrix_rank(basis) == dim
    assert torch.cat(rows).matmul(basis.T).abs().max() < 1e-12


@pytest.mark.parametrize("m,n", PAIRS)
def test_self_basis_spans_the_angle_independent_solutions(m, n):
    dn, dm = (1 if n == 0 else 2), (1 if m == 0 else 2)
    ps = torch.linspace(0.1, 6.0, 7, dtype=torch.float64)
    rows = [torch.eye(dn * dm, dtype=torch.float64) - torch.kron(rho(n, -p[None])[0], rho(m, p[None])[0].T.contiguous())
            for p in ps]
    dim = null_space_dim(torch.cat(rows))
    basis = self_basis(m, n)
    assert dim == num_self_basis(m, n) == basis.shape[0]
    if dim:
        assert torch.linalg.matrix_rank(basis.reshape(dim, -1)) == dim
        for p in ps:
            assert torch.allclose(basis, rho(n, -p[None]) @ basis @ rho(m, p[None]), atol=1e-14)
