"""The L-CNN example keeps results a user already has."""
import importlib
import sys
from pathlib import Path

import pytest


def test_results_are_not_overwritten_without_asking(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
    try:
        script = importlib.import_module("lcnn_wilson_loops")
    finally:
        sys.path.pop(0)
    (tmp_path / "wilson_loops.md").write_text("earlier results")
    with pytest.raises(SystemExit, match="--overwrite"):
        script.main(["--out", str(tmp_path), "--root", str(tmp_path / "data")])
    assert (tmp_path / "wilson_loops.md").read_text() == "earlier results"
    assert not (tmp_path / "data").exists()  # refused before any Monte Carlo work
