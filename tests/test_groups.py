import pytest
import torch

from meshgdl import groups

GROUPS = ["U1", "SU2", "SU3", "SU4"]


@pytest.mark.parametrize("group", GROUPS)
def test_random_elements_are_in_the_group(group):
    g = torch.Generator().manual_seed(0)
    u = groups.random_element(group, (50,), generator=g)
    n = groups.group_size(group)
    assert u.shape == (50, n, n)
    assert float(groups.group_deviation(u, group).max()) < 1e-12
    groups.check_in_group(u, group)
    v = groups.random_near_identity(group, (50,), 0.3, generator=g)
    groups.check_in_group(v, group)


@pytest.mark.parametrize("group", ["SU2", "SU3"])
def test_haar_moments(group):
    # Haar measure on SU(n): E[tr U] = 0 and E[|tr U|^2] = 1 (Schur orthogonality of the
    # fundamental representation); a biased sampler (e.g. plain QR) fails the second.
    u = groups.random_element(group, (40000,), generator=torch.Generator().manual_seed(1))
    tr = torch.diagonal(u, dim1=-2, dim2=-1).sum(-1)
    assert abs(complex(tr.mean())) < 0.03
    assert abs(float((tr.abs() ** 2).mean()) - 1) < 0.03


@pytest.mark.parametrize("group", GROUPS)
def test_projection(group):
    g = torch.Generator().manual_seed(2)
    u = groups.random_element(group, (20,), generator=g)
    assert torch.allclose(groups.project_to_group(u, group), u, atol=1e-12)
    noisy = u + 1e-3 * torch.randn(u.shape, dtype=u.dtype, generator=g)
    p = groups.project_to_group(noisy, group)
    groups.check_in_group(p, group)
    assert float((p - u).abs().max()) < 1e-2  # the projection moves the matrix back to the group
    # nearest: no group element is closer to the noisy matrix than its projection
    assert float((p - noisy).norm(dim=(-1, -2)).max()) <= float((u - noisy).norm(dim=(-1, -2)).max()) + 1e-12


def test_group_names_and_errors():
    assert [groups.group_size(g) for g in ("U1", "SU2", "SU3", "SU7", "su(2)")] == [1, 2, 3, 7, 2]
    with pytest.raises(ValueError, match="unknown gauge group"):
        groups.group_size("SO3")
    with pytest.raises(ValueError, match="unknown gauge group"):
        groups.group_size("SU1")
    u = groups.random_element("SU2", (5,), generator=torch.Generator().manual_seed(3))
    with pytest.raises(ValueError, match=r"5 of 5 links are not in SU2 \(max .* = 3\.000e\+00.*project_to_group"):
        groups.check_in_group(2 * u, "SU2")
    with pytest.raises(ValueError, match="det"):
        groups.check_in_group(1j * u, "SU2")  # unitary, but det = -1
    with pytest.raises(ValueError, match=r"end in \[3, 3\]"):
        groups.check_in_group(u, "SU3")
    with pytest.raises(TypeError, match="complex"):
        groups.check_in_group(u.real, "SU2")
