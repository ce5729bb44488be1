"""Reference models built from the layers of :mod:`meshgdl.nn`."""
from ..._lazy import lazy_module

_EXPORTS = {
    "GemResNet": ".gem_resnet",
    "GemResBlock": ".gem_resnet",
    "GemUNet": ".gem_unet",
    "CoarseningHierarchy": ".gem_unet",
    "CNGroupCNN": ".cn_group_cnn",
    "LCNN": ".lcnn",
    "HealSwin": ".heal_swin",
    "HealSwinUNet": ".heal_swin",
}

__getattr__, __dir__ = lazy_module(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
