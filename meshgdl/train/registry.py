"""Models and data sets by name, for ``meshgdl train``; users add their own with the decorators.

A model builder is called as ``build(info, **options)`` and returns a ``torch.nn.Module`` whose
``forward(batch)`` takes the batch of the data loader and returns the prediction; ``info`` is the
:class:`~meshgdl.train.data.DataInfo` of the data set (channels, task, HEALPix resolution).
A data set builder is called as ``build(dtype, seed, **options)`` and returns a
:class:`~meshgdl.train.data.TrainData`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Entry:
    """One registered model or data set.

    Attributes:
        name: the name used in ``[model] name`` or ``[data] name``.
        build: the builder (see the module docstring).
        defaults: every option with its default, in the order ``--print-config`` writes them.
        help: a one-line comment for each option (written beside it by ``--print-config``).
        summary: one line that says what it is.
        data: for a model, the data set ``--print-config`` pairs it with.
    """

    name: str
    build: Callable
    defaults: dict = field(default_factory=dict)
    help: dict = field(default_factory=dict)
    summary: str = ""
    data: str | None = None


class Registry:
    """Names to :class:`Entry`; lookups are case-insensitive and a miss lists what is there."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, entry: Entry, overwrite: bool = False) -> Entry:
        key = entry.name.lower()
        if key in self._entries and not overwrite:
            raise ValueError(f"a {self.kind} named {entry.name!r} is already registered; pass overwrite=True to replace it")
        self._entries[key] = entry
        return entry

    def get(self, name: str) -> Entry:
        _load_builtins()
        try:
            return self._entries[str(name).lower()]
        except KeyError:
            raise ValueError(f"no {self.kind} named {name!r}; known: {', '.join(self.names())} "
                             f"(add your own with meshgdl.train.register_{self.kind})") from None

    def names(self) -> list[str]:
        _load_builtins()
        return sorted(e.name for e in self._entries.values())


MODELS = Registry("model")
DATASETS = Registry("dataset")


def register_model(name: str, defaults: dict | None = None, help: dict | None = None, summary: str = "",
                   data: str | None = None, overwrite: bool = False):
    """Decorator: register ``build(info, **options) -> nn.Module`` as a model for ``meshgdl train``.

    Example::

        @register_model("MyNet", defaults={"width": 32}, data="mesh_folder")
        def my_net(info, width):
            return MyNet(info.in_channels, info.out_channels, width)
    """
    def decorate(build):
        MODELS.add(Entry(name, build, dict(defaults or {}), dict(help or {}), summary, data), overwrite)
        return build
    return decorate


def register_dataset(name: str, defaults: dict | None = None, help: dict | None = None, summary: str = "",
                     overwrite: bool = False):
    """Decorator: register ``build(dtype, seed, **options) -> TrainData`` as a data set."""
    def decorate(build):
        DATASETS.add(Entry(name, build, dict(defaults or {}), dict(help or {}), summary), overwrite)
        return build
    return decorate


_loaded = False


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from . import data, models  # noqa: F401  (their decorators fill the registries)
