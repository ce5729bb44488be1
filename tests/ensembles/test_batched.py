"""A batched ensemble trains exactly as its members trained one by one."""
import copy

import pytest
import torch

from meshgdl.ensembles import BatchedEnsemble, ensemble_outputs, fit_ensemble


class SmallCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 3, 3, padding=1)
        self.head = torch.nn.Linear(3 * 4 * 4, 5)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).flatten(1))


def _data(steps=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(6, 1, 4, 4, generator=gen, dtype=torch.float64), torch.randint(5, (6,), generator=gen))
            for _ in range(steps)]


@pytest.mark.parametrize("optimizer", [lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
                                       lambda p: torch.optim.Adam(p, lr=0.01)], ids=["sgd", "adam"])
def test_batched_training_equals_members_trained_one_by_one(optimizer):
    torch.set_default_dtype(torch.float64)
    try:
        ensemble = BatchedEnsemble.from_factory(SmallCNN, 4, seed=3)
        members = [ensemble.member(m) for m in range(4)]
    finally:
        torch.set_default_dtype(torch.float32)
    batches = _data()
    x = batches[0][0]
    torch.testing.assert_close(ensemble(x), ensemble_outputs(members, x), rtol=0, atol=1e-12)
    loss = torch.nn.functional.cross_entropy
    fit_ensemble(ensemble, batches, loss, optimizer)
    fit_ensemble(members, batches, loss, optimizer)
    for m, model in enumerate(members):
        for name, param in ensemble.member(m).named_parameters():
            torch.testing.assert_close(param, dict(model.named_parameters())[name], rtol=0, atol=1e-10)
    torch.testing.assert_close(ensemble(x), ensemble_outputs(members, x), rtol=0, atol=1e-10)


def test_members_start_independent_and_seeded():
    a = BatchedEnsemble.from_factory(SmallCNN, 3, seed=0)
    b = BatchedEnsemble.from_factory(SmallCNN, 3, seed=0)
    for p, q in zip(a.stacked, b.stacked):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    w = a.stacked[0]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2])
    torch.manual_seed(0)
    torch.testing.assert_close(a.member(0).conv.weight, SmallCNN().conv.weight, rtol=0, atol=0)


def test_per_member_inputs():
    ensemble = BatchedEnsemble([SmallCNN(), SmallCNN()])
    x = torch.randn(2, 5, 1, 4, 4)
    out = ensemble(x, per_member=True)
    for m in range(2):
        torch.testing.assert_close(out[m], ensemble.member(m)(x[m]))


def test_bad_ensembles_are_refused():
    with pytest.raises(ValueError, match="at least one model"):
        BatchedEnsemble([])
    with pytest.raises(ValueError, match="same parameters"):
        BatchedEnsemble([SmallCNN(), torch.nn.Linear(2, 2)])
    with pytest.raises(ValueError, match="positive integer"):
        BatchedEnsemble.from_factory(SmallCNN, 0)
    with pytest.raises(TypeError, match="pass a list"):
        fit_ensemble([SmallCNN()], iter(_data()), torch.nn.functional.cross_entropy,
                     lambda p: torch.optim.SGD(p, lr=0.1))
