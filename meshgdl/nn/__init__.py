"""Equivariant layers: message passing on framed graphs, group convolutions and lattice layers."""
from .._lazy import lazy_module

_EXPORTS = {
    "FieldType": "..field_type",
    "LatticeConv": ".lattice_conv",
    "LatticeBilinear": ".lattice_bilinear",
    "LatticeActivation": ".lattice_activation",
    "TraceReadout": ".trace_readout",
    "WilsonLoopInput": ".wilson_loop_input",
    "models": ".models",
    "LCNN": ".models.lcnn",
}

__getattr__, __dir__ = lazy_module(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
