"""``python -m meshgdl``, the same as the ``meshgdl`` command (and what ``torchrun -m meshgdl`` runs)."""
from .cli import main

raise SystemExit(main())
