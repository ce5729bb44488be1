"""The README's speed table quotes the committed benchmark result (``benchmarks/readme_table.py``)."""
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import readme_table  # noqa: E402

RESULTS = "benchmarks/results/cpu-x86_64-2threads.json"


def test_readme_quotes_the_committed_results():
    assert readme_table.main(["--check", "--results", RESULTS]) == 0


def test_check_fails_when_results_change(tmp_path):
    readme = tmp_path / "README.md"
    shutil.copy(ROOT / "README.md", readme)
    results = json.loads((ROOT / RESULTS).read_text())
    row = next(r for r in results["rows"] if r["layer"] == "GemConv_K2")
    row["ratio_to_gcn"] += 0.5
    changed = tmp_path / "results.json"
    changed.write_text(json.dumps(results))
    assert readme_table.main(["--check", "--results", str(changed), "--readme", str(readme)]) == 1
    # rewriting brings the README back in line, and it then shows the new ratio
    assert readme_table.main(["--results", str(changed), "--readme", str(readme)]) == 0
    assert readme_table.main(["--check", "--results", str(changed), "--readme", str(readme)]) == 0
    assert f"{row['ratio_to_gcn']:.2f}" in readme.read_text()
