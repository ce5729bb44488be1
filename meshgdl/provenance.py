"""Where a result came from: the commit, the machine and the versions, written beside every table.

Examples and benchmarks store :func:`run_record` in their JSON and :func:`run_line` under their
Markdown tables, so a committed result names the code that produced it.
"""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def run_record() -> dict:
    """``{commit, dirty, date, machine, python, torch, meshgdl, threads}`` of this run.

    ``commit`` is the checked-out commit (``None`` outside a git checkout); ``dirty`` lists the
    tracked files that differ from it, so a result from uncommitted code says so.
    """
    import torch

    from . import __version__

    changed = _git("diff", "--name-only", "HEAD")
    return {
        "commit": _git("rev-parse", "HEAD"),
        "dirty": sorted(changed.splitlines()) if changed else [],
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores"
                   + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "meshgdl": __version__,
        "threads": torch.get_num_threads(),
    }


def run_line(record: dict) -> str:
    """One Markdown line naming the run: commit (with ``+changes`` if dirty), date, machine, versions."""
    commit = (record["commit"] or "unknown")[:10] + ("+changes" if record["dirty"] else "")
    return (f"Ran on commit `{commit}`, {record['date']}, {record['machine']}, "
            f"{record['threads']} torch thread{'' if record['threads'] == 1 else 's'}, torch {record['torch']}.")
