"""Pooling: global invariant pooling, HEALPix nesting, and mesh coarsening with transport to the coarse
frame."""
