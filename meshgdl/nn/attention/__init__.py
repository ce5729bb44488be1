"""Attention on HEALPix (HEAL-SWIN): windows of consecutive NESTED pixels, their shifts, and the
patch layers of a hierarchical transformer."""
