"""Equivariant layers: message passing on framed graphs, group convolutions and lattice layers."""
from .._lazy import lazy_module

_EXPORTS = {
    "FieldType": "..field_type",
    "GaugeMessagePassing": ".gauge_message_passing",
    "GemConv": ".gem_conv",
    "IsoConv": ".iso_conv",
}

__getattr__, __dir__ = lazy_module(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
