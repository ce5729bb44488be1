"""Pooling: global invariant pooling and hierarchical pooling with transport to the coarse frame."""
