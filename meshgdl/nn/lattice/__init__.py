"""Lattice gauge-equivariant layers (L-CNN): transport of matrix features along the links."""
