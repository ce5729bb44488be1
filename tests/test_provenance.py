import re
import subprocess

from meshgdl.provenance import run_line, run_record


def test_record_names_the_checked_out_commit():
    record = run_record()
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    if not head:
        assert record["commit"] is None
        return
    assert record["commit"] == head
    assert re.fullmatch(r"[0-9a-f]{40}", record["commit"])
    line = run_line(record)
    assert head[:10] in line and ("+changes" in line) == bool(record["dirty"])


def test_line_marks_uncommitted_code():
    record = {**run_record(), "commit": "0123456789abcdef", "dirty": ["meshgdl/graph.py"]}
    assert "`0123456789+changes`" in run_line(record)
