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


def require_data(source: str, name: str):
    """Path of a fetched data file, or skip the test naming the command that fetches it."""
    path = data_root() / source / name
    if not path.exists():
        pytest.skip(f"{path} is absent; fetch it with `{fetch_command(source)}`")
    return path
