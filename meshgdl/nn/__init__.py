"""Equivariant layers: message passing on framed graphs, group convolutions and lattice layers."""
from .._lazy import lazy_module

_EXPORTS = {
    "FieldType": "..field_type",
    "GaugeMessagePassing": ".gauge_message_passing",
    "GemConv": ".gem_conv",
    "IsoConv": ".iso_conv",
    "EquivariantLinear": ".equivariant_linear",
    "RegularNonlinearity": ".regular_nonlinearity",
    "NormNonlinearity": ".norm_nonlinearity",
    "GatedNonlinearity": ".gated_nonlinearity",
    "GaugeBatchNorm": ".gauge_batch_norm",
    "GaugeLayerNorm": ".gauge_layer_norm",
    "GlobalInvariantPool": ".pool.global_invariant_pool",
    "CyclicFieldType": ".cyclic_field_type",
    "TransportPool": ".pool.transport_pool",
    "coarsen": ".pool.coarsen",
    "CNLiftingConv": ".cn_lifting_conv",
    "CNGroupConv": ".cn_group_conv",
    "CNOrientationPool": ".cn_orientation_pool",
}

__getattr__, __dir__ = lazy_module(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
