import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Monte Carlo runs many tiny tensor operations: on a shared machine one thread is far faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
