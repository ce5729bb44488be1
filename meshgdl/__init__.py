"""meshgdl: geometric deep learning on framed graphs.

Every domain (triangle meshes, point clouds, grids, HEALPix spheres, lattices) becomes a
:class:`FramedGraph`: nodes carry tangent frames, edges carry the log map and the parallel
transport between neighbouring frames. Submodules load on first use, so ``import meshgdl`` is fast.
"""
from ._lazy import lazy_module

__version__ = "0.1.0"

_EXPORTS = {
    "FramedGraph": ".graph",
    "GraphFileError": ".graph_io",
    "gauge_transform": ".graph",
    "permute_nodes": ".graph",
    "FieldType": ".field_type",
    "cache_dir": ".cache",
    "set_cache_dir": ".cache",
    "geometry": ".geometry",
    "nn": ".nn",
    "testing": ".testing",
    "datasets": ".datasets",
    "distributed": ".distributed",
    "groups": ".groups",
    "observables": ".observables",
    "ntk": ".ntk",
    "ensembles": ".ensembles",
}

__getattr__, __dir__ = lazy_module(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
