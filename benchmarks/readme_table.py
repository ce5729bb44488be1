"""The README's speed table, generated from a committed benchmark result.

    python benchmarks/readme_table.py                 # rewrite the table in README.md
    python benchmarks/readme_table.py --check         # exit 1 if README.md differs from the results

The table sits between the markers ``<!-- speed-table:begin -->`` and ``<!-- speed-table:end -->``
and quotes ``benchmarks/results/cpu-x86_64-2threads.json`` (or ``--results``): forward+backward time
over GCNConv's on the same graph, and the commit the results ran on.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- speed-table:begin -->", "<!-- speed-table:end -->"
GRAPHS = {"bunny": "bunny", "bunny_1m": "bunny subdivided", "healpix64": "HEALPix nside 64",
          "healpix256": "HEALPix nside 256"}
COLUMNS = {"IsoConv": "IsoConv", "GemConv_K1": "GemConv K=1", "GemConv_K2": "GemConv K=2",
           "GemConv_K2_plain": "GemConv K=2, message passing", "FeaStConv": "FeaStConv"}


def _nodes(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def speed_table(results: dict, source: str) -> str:
    """Markdown: one row a graph, one column a layer, fwd+bwd time over GCNConv's (peak memory over
    GCNConv's in brackets)."""
    rows = results["rows"]
    lines = ["| graph | nodes | " + " | ".join(COLUMNS.values()) + " |",
             "|---|---:|" + "---:|" * len(COLUMNS)]
    for graph, label in GRAPHS.items():
        mine = {r["layer"]: r for r in rows if r["graph"] == graph}
        if "GCNConv" not in mine:
            continue
        gcn = mine["GCNConv"]
        cells = []
        for layer in COLUMNS:
            r = mine.get(layer)
            cells.append("—" if r is None else
                         f"{r['ratio_to_gcn']:.2f} ({r['peak_bytes'] / gcn['peak_bytes']:.2f})")
        lines.append(f"| {label} | {_nodes(gcn['nodes'])} | " + " | ".join(cells) + " |")
    run = results["run"]
    lines += ["", f"Forward+backward time over GCNConv's, and in brackets peak memory over GCNConv's, from "
                  f"`{source}` (commit `{(run.get('commit') or 'unknown')[:10]}`, {run.get('date')}, "
                  f"{run.get('threads')} torch threads)."]
    return "\n".join(lines)


def replace_block(text: str, block: str) -> str:
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"README.md must hold exactly one {BEGIN} ... {END} block")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{block}\n{END}{tail}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", default="benchmarks/results/cpu-x86_64-2threads.json")
    parser.add_argument("--readme", default=str(ROOT / "README.md"))
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    results = json.loads((ROOT / args.results).read_text())
    readme = Path(args.readme)
    new = replace_block(readme.read_text(), speed_table(results, args.results))
    if args.check:
        if new != readme.read_text():
            print(f"{readme} does not quote {args.results}; run python benchmarks/readme_table.py", file=sys.stderr)
            return 1
        return 0
    readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
