import pytest
import torch

from meshgdl.datasets.fetch import data_root, fetch_command


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request):
    """Run a test in float32 and float64; exact symmetries are asserted in float64."""
    return request.param


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own empty geometry cache, so no test sees another's entries."""
    import meshgdl.cache as cache

    monkeypatch.setattr(cache, "_CACHE_DIR", tmp_path / "cache")
    cache.clear_memory()
    yield
    cache.clear_memory()


SCATTER_MISSING = ("torch-scatter is NOT AVAILABLE, so the tests of its aggregation backend skip: it ships only "
                   "as source; build it with `make scatter` (needs a C++ compiler and the Python headers) or "
                   "`pip install --no-build-isolation torch-scatter`")


def require_torch_scatter():
    """Skip a test of the torch-scatter backend, saying why and how to build it."""
    from meshgdl import ops

    if not ops.has_torch_scatter():
        pytest.skip(SCATTER_MISSING)


def _scatter_status() -> str:
    from meshgdl import ops

    return "torch-scatter: " + ("available, both aggregation backends are tested" if ops.has_torch_scatter()
                                else SCATTER_MISSING.removeprefix("torch-scatter is "))


def pytest_report_header(config):
    return _scatter_status()


def pytest_terminal_summary(terminalreporter):
    # again at the end (pytest -q shows no header), where a reader of CI's log looks
    from meshgdl import ops

    if ops.has_torch_scatter():
        terminalreporter.write_line(_scatter_status())
    else:
        terminalreporter.write_sep("!", "torch-scatter NOT AVAILABLE", yellow=True)
        terminalreporter.write_line(SCATTER_MISSING)


def require_data(source: str, name: str):
    """Path of a fetched data file, or skip the test naming the command that fetches it."""
    path = data_root() / source / name
    if not path.exists():
        pytest.skip(f"{path} is absent; fetch it with `{fetch_command(source)}`")
    return path
