"""Data sets and raw-file readers. Fetch pinned real data with ``python -m meshgdl.datasets.fetch``."""
from .._lazy import lazy_module

_EXPORTS = {
    "data_root": ".fetch",
    "data_path": ".fetch",
    "fetch": ".fetch",
    "wilson_metropolis": ".lattice_gauge",
    "exact_mean_plaquette_2d": ".lattice_gauge",
    "LatticeGaugeDataset": ".lattice_gauge_dataset",
    "ising_metropolis": ".ising",
    "ising_energy": ".ising",
    "onsager_energy": ".ising",
    "onsager_magnetization": ".ising",
    "ISING_CRITICAL_TEMPERATURE": ".ising",
    "IsingDataset": ".ising_dataset",
    "CortexSurface": ".cortex",
    "load_conte69": ".cortex",
    "load_fashion_mnist": ".images",
    "load_mnist_5k": ".images",
    "parcellation_task": ".cortex",
    "load_images": ".spherical_images",
    "sample_images": ".spherical_images",
    "render_maps": ".spherical_images",
    "SphericalImages": ".spherical_images_dataset",
    "log_maps": ".mesh_images",
    "lay_images": ".mesh_images",
    "mesh_image_task": ".mesh_images",
}

__getattr__, __dir__ = lazy_module(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
