"""L-CNN on an accelerator: gauge and translation equivariance checked on the device, and the time
of a training step (forward and backward) on the device against the CPU, in the same process.

    PYTHONPATH=. python benchmarks/lcnn_device.py
"""
import time

import torch
from torch_geometric.data import Batch

from meshgdl import observables as obs
from meshgdl.geometry import lattice_graph
from meshgdl.nn import LCNN
from meshgdl.testing import assert_lattice_gauge_equivariant, assert_lattice_translation_equivariant


def step_time(model, batch, repeat=5):
    for _ in range(2):
        model(batch).sum().backward()
    sync = torch.cuda.synchronize if batch.link.is_cuda else (lambda: None)
    sync()
    t = time.perf_counter()
    for _ in range(repeat):
        model(batch).sum().backward()
    sync()
    return (time.perf_counter() - t) / repeat


def main():
    if not torch.cuda.is_available():
        print("no CUDA device; nothing to compare")
        return
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = LCNN(channels=(3, 3), activation=True).double()
    graph = lattice_graph((8, 8), group="SU2", links="random")
    on_device = graph.to(device)
    model_d = LCNN(channels=(3, 3), activation=True).double().to(device)
    model_d.load_state_dict(model.state_dict())
    err = (model_d(on_device).cpu() - model(graph)).abs().max().item()
    print(f"device vs CPU output difference {err:.2e}")
    print(f"gauge equivariance error on device {assert_lattice_gauge_equivariant(model_d, on_device):.2e}")
    print(f"translation equivariance error on device {assert_lattice_translation_equivariant(model_d, on_device):.2e}")
    diff = (obs.traced_wilson_loops(on_device, (2, 3)).cpu() - obs.traced_wilson_loops(graph, (2, 3))).abs().max()
    print(f"Wilson loops device vs CPU {float(diff):.2e}")
    for shape, count in [((8, 8), 16), ((32, 32), 16)]:
        batch = Batch.from_data_list([lattice_graph(shape, group="SU2", links="random") for _ in range(count)])
        t_cpu = step_time(model, batch)
        t_dev = step_time(model_d, batch.to(device))
        print(f"{count} x {shape}: CPU {t_cpu * 1e3:.1f} ms, device {t_dev * 1e3:.1f} ms, CPU/device {t_cpu / t_dev:.1f}")


if __name__ == "__main__":
    main()
