"""Lazy attribute loading, so that ``import meshgdl`` does not import torch."""
from __future__ import annotations

import importlib


def lazy_module(package: str, exports: dict[str, str]):
    """Return ``(__getattr__, __dir__)`` for a package whose names live in submodules.

    ``exports`` maps a public name to the submodule (relative to ``package``) that defines it.
    """

    def __getattr__(name: str):
        try:
            module = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        loaded = importlib.import_module(module, package)
        value = loaded if module == f".{name}" else getattr(loaded, name)
        globals_ = importlib.import_module(package).__dict__
        globals_[name] = value
        return value

    def __dir__():
        return sorted(set(importlib.import_module(package).__dict__) | set(exports))

    return __getattr__, __dir__
