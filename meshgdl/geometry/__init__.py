"""Builders: every domain becomes a :class:`meshgdl.FramedGraph`."""
from .._lazy import lazy_module

_EXPORTS = {
    # triangle meshes
    "mesh_graph": ".mesh",
    "load_mesh": ".mesh",
    "read_mesh": ".mesh_io",
    # point clouds
    "point_cloud_graph": ".points",
    "fibonacci_sphere": ".points",
    # grids
    "grid_graph": ".grid",
    "grid_rotation": ".grid",
    # lattices
    "lattice_graph": ".lattice",
    "lattice_links": ".lattice",
    "lattice_steps": ".lattice",
    "lattice_shape": ".lattice",
    "path_product": ".lattice",
    # HEALPix
    "healpix_graph": ".healpix",
    "healpix_map_graph": ".healpix",
    "healpix_rotation": ".healpix",
    "healpix_grid_graph": ".healpix_grid",
    "graph_to_healpix": ".healpix_io",
    "read_healpix_fits": ".healpix_io",
    "write_healpix_map": ".healpix_io",
    "flatten_nuniq": ".healpix_nuniq",
    "unseen_pixels": ".healpix_mask",
    "healpix_coarsen": ".healpix_hierarchy",
    "healpix_levels": ".healpix_hierarchy",
    # shared tangent geometry and curvature
    "loop_holonomy": ".holonomy",
    "face_holonomy": ".holonomy",
    "boundary_turning": ".holonomy",
    "gauss_bonnet": ".holonomy",
    "face_folds": ".holonomy",
    "transport_angle": ".tangent",
    "tangent_logmap": ".tangent",
    "frames_from_reference": ".tangent",
}

__getattr__, __dir__ = lazy_module(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
