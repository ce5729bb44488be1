"""Equivariant layers, by family: ``gauge/`` (message passing on framed graphs, nonlinearities, norms),
``group/`` (C_N and D_N group convolutions), ``lattice/`` (L-CNN layers), ``attention/`` (HEAL-SWIN
windows), ``pool/`` (hierarchies and global pooling), ``functional/`` (kernel bases, fused
aggregation, references) and ``models/``."""
from .._lazy import lazy_module

_EXPORTS = {
    "FieldType": "..field_type",
    "HealpixPool": ".pool.healpix_pool",
    "HealpixUnpool": ".pool.healpix_pool",
    "pool_healpix": ".pool.healpix_pool",
    "unpool_healpix": ".pool.healpix_pool",
    "GaugeMessagePassing": ".gauge.gauge_message_passing",
    "GemConv": ".gauge.gem_conv",
    "IsoConv": ".gauge.iso_conv",
    "EquivariantLinear": ".gauge.equivariant_linear",
    "RegularNonlinearity": ".gauge.regular_nonlinearity",
    "NormNonlinearity": ".gauge.norm_nonlinearity",
    "GatedNonlinearity": ".gauge.gated_nonlinearity",
    "GaugeBatchNorm": ".gauge.gauge_batch_norm",
    "GaugeLayerNorm": ".gauge.gauge_layer_norm",
    "GlobalInvariantPool": ".pool.global_invariant_pool",
    "CyclicFieldType": ".group.cyclic_field_type",
    "TransportPool": ".pool.transport_pool",
    "coarsen": ".pool.coarsen",
    "CNLiftingConv": ".group.cn_lifting_conv",
    "CNGroupConv": ".group.cn_group_conv",
    "CNOrientationPool": ".group.cn_orientation_pool",
    "DihedralFieldType": ".group.dihedral_field_type",
    "DNLiftingConv": ".group.dn_lifting_conv",
    "DNGroupConv": ".group.dn_group_conv",
    "LatticeConv": ".lattice.lattice_conv",
    "LatticeBilinear": ".lattice.lattice_bilinear",
    "LatticeActivation": ".lattice.lattice_activation",
    "TraceReadout": ".lattice.trace_readout",
    "WilsonLoopInput": ".lattice.wilson_loop_input",
    "HealpixSky": ".attention.healpix_sky",
    "HealpixWindowAttention": ".attention.healpix_window_attention",
    "HealSwinBlock": ".attention.heal_swin_block",
    "HealpixPatchEmbed": ".attention.healpix_patch_embed",
    "HealpixPatchMerging": ".attention.healpix_patch_merging",
    "HealpixPatchExpanding": ".attention.healpix_patch_expanding",
    "HealSwin": ".models.heal_swin",
    "HealSwinUNet": ".models.heal_swin",
    "GemUNet": ".models.gem_unet",
    "CoarseningHierarchy": ".models.gem_unet",
    "CNGroupCNN": ".models.cn_group_cnn",
    "models": ".models",
    "LCNN": ".models.lcnn",
}

__getattr__, __dir__ = lazy_module(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
