"""Neural tangent kernels: empirical kernels of any module (:mod:`~meshgdl.ntk.empirical`), the
infinite-width kernels of fully connected and graph networks (:mod:`~meshgdl.ntk.analytic`), the
NTK-parametrised networks they describe (:mod:`~meshgdl.ntk.wide`) and the predictions of kernel
gradient flow (:mod:`~meshgdl.ntk.predict`). ``docs/ntk.md`` gives the formulas."""
from .._lazy import lazy_module

_EXPORTS = {
    "empirical_ntk": ".empirical",
    "model_outputs": ".empirical",
    "empirical_ntk_reference": ".reference",
    "gaussian_expectations": ".analytic",
    "mlp_kernels": ".analytic",
    "graph_kernels": ".analytic",
    "Kernels": ".analytic",
    "NTKMLP": ".wide",
    "NTKGraphNet": ".wide",
    "mean_aggregation": ".wide",
    "gradient_flow_mean": ".predict",
    "nngp_posterior": ".predict",
}

__getattr__, __dir__ = lazy_module(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
