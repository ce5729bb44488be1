"""Equivariant layers: message passing on framed graphs, group convolutions and lattice layers."""
from .._lazy import lazy_module

_EXPORTS = {
    "FieldType": "..field_type",
    "HealpixPool": ".healpix_pool",
    "HealpixUnpool": ".healpix_pool",
    "pool_healpix": ".healpix_pool",
    "unpool_healpix": ".healpix_pool",
}

__getattr__, __dir__ = lazy_module(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
