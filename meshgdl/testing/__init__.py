"""One-line equivariance checks, for meshgdl's own layers and for the layers users write."""
from .._lazy import lazy_module

_EXPORTS: dict[str, str] = {
    "assert_permutation_equivariant": ".equivariance",
    "assert_gauge_equivariant": ".equivariance",
    "assert_rotation_invariant": ".equivariance",
    "assert_symmetry_equivariant": ".equivariance",
}

__getattr__, __dir__ = lazy_module(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
