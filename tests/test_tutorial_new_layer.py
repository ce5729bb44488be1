"""The code of docs/tutorial_new_layer.md runs and proves what the page says."""
import re
from pathlib import Path

import torch

PAGE = Path(__file__).resolve().parents[1] / "docs" / "tutorial_new_layer.md"


def test_tutorial_code_runs_and_its_claims_hold(capsys):
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    assert len(blocks) == 3
    assert len(blocks[0].strip().splitlines()) < 40          # the layer, imports included
    namespace: dict = {}
    torch.manual_seed(0)
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), namespace)
    lines = capsys.readouterr().out.strip().splitlines()
    errors = [float(v) for v in lines[:3]]
    assert all(e < 1e-10 for e in errors)
    assert lines[3].startswith("gauge equivariance: relative error") and "exceeds" in lines[3]
