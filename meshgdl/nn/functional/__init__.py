"""Fixed tensors and slow references behind the layers of :mod:`meshgdl.nn` (kernel bases)."""
