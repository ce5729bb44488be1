r"""Deep ensembles trained as one batched model.

:class:`BatchedEnsemble` stacks the parameters of :math:`M` copies of a model along a new leading
dimension (``torch.func.stack_module_state``) and evaluates all members in one call
(``vmap`` over ``functional_call``), so an ensemble of small networks costs about what one wide
network does. The members stay independent: the ensemble's loss is the sum of the members' losses,
so each member's gradient is its own, and an element-wise optimiser (SGD, Adam) steps each member
exactly as it would step alone. Models that ``vmap`` cannot run (data-dependent control flow,
custom operators) train one by one as a plain list of models with the same :func:`fit_ensemble`.
"""
from __future__ import annotations

import copy
from typing import Callable, Iterable, Sequence

import torch
from torch import Tensor
from torch.func import functional_call, stack_module_state, vmap


class BatchedEnsemble(torch.nn.Module):
    r"""``M`` models of one architecture evaluated together.

    Args:
        models (sequence of nn.Module): the members, with identical parameter names and shapes
            (their initialisations should differ: see :meth:`from_factory`). Buffers are read,
            never updated, so batch norm must be in eval mode (or replaced by a layer norm).

    Shapes:
        - input: the model's own inputs, shared by all members (or, with ``per_member=True``, each
          tensor with a leading :math:`[M]`).
        - output: :math:`[M, \dots]`, member ``m``'s output at index ``m``.
    """

    def __init__(self, models: Sequence[torch.nn.Module]):
        super().__init__()
        models = list(models)
        if not models:
            raise ValueError("an ensemble needs at least one model")
        names = [sorted(n for n, _ in m.named_parameters()) for m in models]
        if any(n != names[0] for n in names):
            raise ValueError("every member must have the same parameters; build them from one factory")
        params, buffers = stack_module_state(models)
        self.size = len(models)
        self._param_names, self._buffer_names = list(params), list(buffers)
        self.stacked = torch.nn.ParameterList(torch.nn.Parameter(params[n].detach().clone()) for n in self._param_names)
        for i, n in enumerate(self._buffer_names):
            self.register_buffer(f"_buffer{i}", buffers[n].clone())
        # a stateless copy on the meta device: functional_call supplies every tensor
        self._template = [copy.deepcopy(models[0]).to("meta")]

    @classmethod
    def from_factory(cls, factory: Callable[[], torch.nn.Module], size: int, seed: int = 0) -> "BatchedEnsemble":
        """``size`` members, member ``m`` built by ``factory()`` after ``torch.manual_seed(seed + m)``."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size (the number of members) must be a positive integer, got {size!r}")
        models = []
        for m in range(size):
            torch.manual_seed(seed + m)
            models.append(factory())
        return cls(models)

    def _state(self):
        params = dict(zip(self._param_names, self.stacked))
        buffers = {n: getattr(self, f"_buffer{i}") for i, n in enumerate(self._buffer_names)}
        return params, buffers

    def forward(self, *args, per_member: bool = False) -> Tensor:
        params, buffers = self._state()
        template = self._template[0]

        def call(p, b, *a):
            return functional_call(template, (p, b), a)

        in_dims = (0, 0) + tuple(0 if per_member and isinstance(a, Tensor) else None for a in args)
        return vmap(call, in_dims=in_dims, randomness="different")(params, buffers, *args)

    def member(self, m: int) -> torch.nn.Module:
        """Member ``m`` as an ordinary module (a copy of its current parameters)."""
        if not 0 <= m < self.size:
            raise IndexError(f"member {m} does not exist; the ensemble has {self.size}")
        params, buffers = self._state()
        module = copy.deepcopy(self._template[0]).to_empty(device=self.stacked[0].device)
        state = {n: t[m].detach().clone() for n, t in {**params, **buffers}.items()}
        module.load_state_dict(state, strict=False)
        return module


def ensemble_outputs(ensemble, *args) -> Tensor:
    """Outputs ``[M, ...]`` of a :class:`BatchedEnsemble` or of a list of models run one by one."""
    if isinstance(ensemble, BatchedEnsemble):
        return ensemble(*args)
    return torch.stack([model(*args) for model in ensemble])


def fit_ensemble(ensemble, batches: Iterable, loss_fn: Callable[[Tensor, Tensor], Tensor],
                 make_optimizer: Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]) -> list[float]:
    r"""Train every member on ``batches`` of ``(inputs, targets)``, minimising
    :math:`\sum_m \text{loss\_fn}(f_m(x), y)`.

    Args:
        ensemble: a :class:`BatchedEnsemble` (one batched step for all members) or a list of
            modules (trained one by one, each with its own optimiser: the fallback for models
            that ``vmap`` cannot run).
        batches (iterable): ``(x, y)`` pairs, or ``(args, y)`` with ``args`` a tuple of inputs;
            a batched ensemble consumes it once, a list of models once per member (so give a list,
            not a generator).
        loss_fn (callable): ``loss_fn(output, target)`` of one member, a scalar.
        make_optimizer (callable): builds an optimiser from parameters, e.g.
            ``lambda p: torch.optim.SGD(p, lr=0.1)``; must be element-wise (SGD, Adam) for the
            batched and one-by-one results to agree.

    Returns:
        The summed loss of every step (for a list of models: member after member).
    """
    def run(model, forward):
        opt, losses = make_optimizer(model.parameters()), []
        for x, y in batches:
            args = x if isinstance(x, tuple) else (x,)
            opt.zero_grad()
            loss = forward(model, args, y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    if isinstance(ensemble, BatchedEnsemble):
        return run(ensemble, lambda e, args, y: sum(loss_fn(out, y) for out in e(*args)))
    if isinstance(batches, Iterable) and iter(batches) is batches:
        raise TypeError("training members one by one reads the batches once per member: pass a list, not an iterator")
    return [v for model in ensemble for v in run(model, lambda m, args, y: loss_fn(m(*args), y))]
