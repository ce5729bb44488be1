"""Deep ensembles: many models trained as one batched model (:mod:`~meshgdl.ensembles.batched`),
group-orbit data augmentation (:mod:`~meshgdl.ensembles.augment`) and the metrics of emergent
equivariance (:mod:`~meshgdl.ensembles.metrics`). ``docs/ntk.md`` describes them."""
from .._lazy import lazy_module

_EXPORTS = {
    "BatchedEnsemble": ".batched",
    "fit_ensemble": ".batched",
    "ensemble_outputs": ".batched",
    "CyclicRotations": ".augment",
    "HealpixPolarRotations": ".augment",
    "PeriodicTranslations": ".augment",
    "ProductGroup": ".augment",
    "rotate_images": ".augment",
    "orbit": ".augment",
    "augment_full_orbit": ".augment",
    "augment_random": ".augment",
    "orbit_same_predictions": ".metrics",
    "orbit_divergence": ".metrics",
    "accuracy": ".metrics",
    "ensemble_size_curve": ".metrics",
}

__getattr__, __dir__ = lazy_module(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
