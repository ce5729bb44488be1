"""One graph larger than a machine: partitions with halo nodes, and message passing across
``torch.distributed`` ranks that gives the full-graph forward and backward.

``assign_parts`` splits the nodes (HEALPix by nested ranges, meshes and point clouds with METIS, or
the user's own vector), ``build_part`` / ``partition_graph`` cut out each rank's local graph and its
send and receive tables, ``halo_exchange`` moves exactly the boundary rows (gradients flow back), and
``distribute`` makes a model of :mod:`meshgdl.nn` run on a :class:`GraphPart`
(``docs/partitioning.md``).
"""
from .._lazy import lazy_module

_EXPORTS = {
    "assign_parts": ".assign",
    "healpix_assignment": ".assign",
    "metis_assignment": ".assign",
    "GraphPart": ".graph_part",
    "build_part": ".graph_part",
    "partition_graph": ".graph_part",
    "healpix_part": ".healpix_split",
    "healpix_halo_sizes": ".healpix_sizes",
    "halo_exchange": ".exchange",
    "distribute": ".distribute_model",
    "reduce_gradients": ".distribute_model",
}

__getattr__, __dir__ = lazy_module(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
