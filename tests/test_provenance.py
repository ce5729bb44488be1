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


def test_dirty_lists_whole_names_of_changed_tracked_files(tmp_path, monkeypatch):
    # a copy of the package in a fresh repository, with one tracked file changed in the work tree
    import shutil
    from pathlib import Path

    import meshgdl.provenance as provenance

    root = Path(provenance.__file__).resolve().parent.parent
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True).returncode:
        return
    repo = tmp_path / "repo"
    (repo / "meshgdl").mkdir(parents=True)
    shutil.copy(provenance.__file__, repo / "meshgdl" / "provenance.py")
    (repo / "CHANGELOG.md").write_text("a\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=repo, check=True)
    (repo / "CHANGELOG.md").write_text("b\n")
    monkeypatch.setattr(provenance, "__file__", str(repo / "meshgdl" / "provenance.py"))
    assert provenance._git("diff", "--name-only", "HEAD") is not None
    assert provenance.run_record()["dirty"] == ["CHANGELOG.md"]
