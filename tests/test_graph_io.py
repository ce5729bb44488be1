import io
import os

import numpy as np
import pytest
import torch
import trimesh

from meshgdl import FramedGraph, GraphFileError
from meshgdl.cache import cached_graph
from meshgdl.geometry import mesh_graph


def sphere_graph(sub=1):
    m = trimesh.creation.icosphere(subdivisions=sub)
    return mesh_graph(np.array(m.vertices), np.array(m.faces), dtype=torch.float64)


def torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if "tmp" in p.name)


def test_save_and_load_with_weights_only(tmp_path):
    g = sphere_graph(1)
    g.name = "icosphere"
    path = g.save(tmp_path / "g.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "meshgdl.FramedGraph" and raw["version"] == 2
    assert raw["checksum"].startswith("sha256:")
    h = FramedGraph.load(path)
    assert h.name == "icosphere" and torch.equal(h.edge_transport, g.edge_transport)
    assert torch.equal(h.face, g.face) and h.num_nodes == g.num_nodes
    with pytest.raises(FileExistsError, match="overwrite=True"):
        g.save(path)
    g.save(path, overwrite=True)
    assert leftovers(tmp_path) == []


def test_version_1_files_still_load(tmp_path):
    g = sphere_graph(1)
    tensors = {k: v for k, v in g.items() if isinstance(v, torch.Tensor)}
    (tmp_path / "old.pt").write_bytes(torch_bytes(
        {"format": "meshgdl.FramedGraph", "version": 1, "tensors": tensors, "meta": {"name": "old"}}))
    h = FramedGraph.load(tmp_path / "old.pt")
    assert h.name == "old" and torch.equal(h.edge_logmap, g.edge_logmap)


def good_file(tmp_path) -> bytes:
    return sphere_graph(1).save(tmp_path / "g.pt", overwrite=True).read_bytes()


def unreadable_files(tmp_path):
    good = good_file(tmp_path)
    graph_like = {"format": "meshgdl.FramedGraph", "version": 2, "tensors": {}, "meta": {}}
    cases = {
        "empty": (b"", "is empty"),
        "text": (b"v 0 0 0\nf 1 2 3\n", "not a torch file"),
        "dict": (torch_bytes({"state_dict": {}}), "a torch file of another kind"),
        "tensor": (torch_bytes(torch.zeros(3)), "a torch file of another kind"),
        "module": (torch_bytes(torch.nn.Linear(2, 2)), "a torch file of another kind, e.g. a saved module"),
        "no version": (torch_bytes({"format": "meshgdl.FramedGraph"}), "damaged: its format version"),
        "no tensors": (torch_bytes({**graph_like, "tensors": None}), "damaged: 'tensors' must"),
        "no checksum": (torch_bytes(graph_like), "damaged: it has no checksum"),
        "newer": (torch_bytes({**graph_like, "version": 3}), "written by a newer meshgdl"),
    }
    for n in (1, 3, 30, 300, len(good) // 3, len(good) // 2, len(good) - 1):
        cases[f"truncated at {n}"] = (good[:n], "truncated or damaged|not a torch file")
    return cases


def test_every_unreadable_file_gives_one_clear_error(tmp_path):
    for name, (data, message) in unreadable_files(tmp_path).items():
        path = tmp_path / "bad.pt"
        path.write_bytes(data)
        with pytest.raises(GraphFileError, match=message) as info:
            FramedGraph.load(path)
        assert str(info.value).startswith(f"{path} "), name
        assert isinstance(info.value, ValueError) and "\n" not in str(info.value), name


def flip(data: bytes, start: int, count: int = 200) -> bytes:
    out = bytearray(data)
    for k in range(start, min(start + count, len(out))):
        out[k] ^= 0xFF
    return bytes(out)


def test_flipped_bytes_in_tensor_data_are_refused(tmp_path):
    g = sphere_graph(2)
    data = g.save(tmp_path / "g.pt").read_bytes()
    for key in ("edge_logmap", "frame", "edge_index"):
        raw = g[key].numpy().tobytes()
        at = data.find(raw)  # torch stores tensor data uncompressed in the zip
        assert at > 0, key
        for offset in (0, len(raw) // 2, len(raw) - 200):
            (tmp_path / "bad.pt").write_bytes(flip(data, at + offset))
            with pytest.raises(GraphFileError, match="damaged: its tensors do not match the checksum"):
                FramedGraph.load(tmp_path / "bad.pt")


def test_flipped_bytes_in_the_zip_structure_give_the_clear_error(tmp_path):
    data = good_file(tmp_path)
    for start in (0, 10, 40, len(data) - 400, len(data) - 200, len(data) - 30):
        (tmp_path / "bad.pt").write_bytes(flip(data, start))
        with pytest.raises(GraphFileError, match="damaged|not a torch file"):
            FramedGraph.load(tmp_path / "bad.pt")


def test_os_errors_pass_through(tmp_path):
    with pytest.raises(FileNotFoundError):
        FramedGraph.load(tmp_path / "absent.pt")
    with pytest.raises(IsADirectoryError):
        FramedGraph.load(tmp_path)


def test_save_checks_the_destination_and_leaves_no_partial_file(tmp_path, monkeypatch):
    g = sphere_graph(1)
    with pytest.raises(FileNotFoundError, match="no folder .*absent for .*; create it first"):
        g.save(tmp_path / "absent" / "g.pt")
    (tmp_path / "x").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        g.save(tmp_path / "x")
    assert leftovers(tmp_path) == []

    def interrupted(obj, f, *args, **kwargs):
        with open(f, "wb") as out:
            out.write(b"PK\x03\x04half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        g.save(tmp_path / "x" / "g.pt")
    assert os.listdir(tmp_path / "x") == []


def test_cache_rebuilds_damaged_entries(tmp_path, caplog):
    import meshgdl.cache as cache

    builds = []
    bad_files = unreadable_files(tmp_path)

    def build():
        builds.append(1)
        return sphere_graph(1)

    cached_graph("test", "k", build)
    entry = cache.cache_dir() / "test" / "k.pt"
    good = entry.read_bytes()
    for name, (data, _) in bad_files.items():
        entry.write_bytes(data)
        cache.clear_memory()
        g = cached_graph("test", "k", build)
        assert g.num_nodes == 42 and "ignoring unreadable cache entry" in caplog.text, name
    entry.write_bytes(flip(good, good.find(sphere_graph(1).frame.numpy().tobytes())))
    cache.clear_memory()
    assert cached_graph("test", "k", build).validate().num_nodes == 42
    assert len(builds) == len(bad_files) + 2
    cache.clear_memory()
    assert cached_graph("test", "k", build).num_nodes == 42 and len(builds) == len(bad_files) + 2


def test_checksum_covers_every_chunk_of_a_large_tensor(tmp_path):
    """A tensor over 16 MiB is hashed in chunks by several threads; a flip in any chunk is caught."""
    g = sphere_graph(1)
    g.big = torch.arange(5_000_000, dtype=torch.float32)  # 20 MB: two chunks
    data = g.save(tmp_path / "g.pt").read_bytes()
    assert torch.equal(FramedGraph.load(tmp_path / "g.pt").big, g.big)
    at = data.find(g.big.numpy().tobytes()[:4096])
    for offset in (1 << 20, (1 << 24) + 100, g.big.numel() * 4 - 300):
        (tmp_path / "bad.pt").write_bytes(flip(data, at + offset, 1))
        with pytest.raises(GraphFileError, match="checksum"):
            FramedGraph.load(tmp_path / "bad.pt")


def test_conjugate_views_save_and_load(tmp_path):
    graph = sphere_graph(1)
    link = torch.randn(graph.num_edges, 2, 2, dtype=torch.complex128)
    graph.link = link.conj()  # a view with the conjugate bit set
    back = FramedGraph.load(graph.save(tmp_path / "g.pt"))
    assert torch.equal(back.link.resolve_conj(), link.conj().resolve_conj())


def test_load_moves_after_verifying(tmp_path):
    path = sphere_graph(1).save(tmp_path / "g.pt")
    back = FramedGraph.load(path, map_location="meta")  # verified on the CPU, then moved
    assert back.pos.device.type == "meta"
