"""Reference models built from meshgdl layers."""
from ..._lazy import lazy_module

_EXPORTS = {
    "LCNN": ".lcnn",
}

__getattr__, __dir__ = lazy_module(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
