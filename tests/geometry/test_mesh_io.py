"""Mesh files: our OFF, PLY and OBJ readers, polygon triangulation, and messages for bad files."""
import math

import numpy as np
import pytest
import torch
import trimesh

from meshgdl.geometry import face_holonomy, load_mesh, read_mesh
from tests.conftest import require_data

CUBE = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1.0]])
QUADS = np.array([[0, 3, 2, 1], [4, 5, 6, 7], [0, 1, 5, 4], [1, 2, 6, 5], [2, 3, 7, 6], [3, 0, 4, 7]])
FANS = np.concatenate([QUADS[:, [0, 1, 2]], QUADS[:, [0, 2, 3]]], 1).reshape(-1, 3)


def off_text(v, polygons):
    lines = ["OFF", f"{len(v)} {len(polygons)} 0"] + [" ".join(map(str, p)) for p in v]
    return "\n".join(lines + [" ".join(map(str, [len(p), *p])) for p in polygons]) + "\n"


def ply_bytes(v, polygons, fmt="binary_little_endian"):
    head = (f"ply\nformat {fmt} 1.0\ncomment made by hand\nelement vertex {len(v)}\nproperty float x\n"
            f"property float y\nproperty float z\nproperty uchar red\nelement face {len(polygons)}\n"
            "property list uchar int vertex_indices\nproperty float quality\nend_header\n").encode()
    if fmt == "ascii":
        rows = [f"{a} {b} {c} 7" for a, b, c in v] + [" ".join(map(str, [len(p), *p, 0.5])) for p in polygons]
        return head + ("\n".join(rows) + "\n").encode()
    e = "<" if fmt == "binary_little_endian" else ">"
    vert = np.zeros(len(v), [("p", e + "f4", 3), ("red", "u1")])
    vert["p"] = v
    body = vert.tobytes()
    for p in polygons:
        body += np.uint8(len(p)).tobytes() + np.asarray(p, e + "i4").tobytes() + np.asarray(0.5, e + "f4").tobytes()
    return head + body


def signed_area(xy):
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * float((x * np.roll(y, -1) - np.roll(x, -1) * y).sum())


@pytest.mark.parametrize("kind", ["off", "obj", "ascii", "binary_little_endian", "binary_big_endian"])
def test_a_quad_cube_reads_as_fans_and_gives_a_sphere(tmp_path, kind):
    if kind == "off":
        path = tmp_path / "cube.off"
        path.write_text(off_text(CUBE, QUADS))
    elif kind == "obj":  # v/vt/vn forms and negative (relative) indices
        path = tmp_path / "cube.obj"
        rows = [f"v {a} {b} {c}" for a, b, c in CUBE] + ["vt 0 0", "vn 0 0 1"]
        rows += ["f " + " ".join(f"{i + 1}/1/1" if k % 2 else f"{i - 8}//1" for k, i in enumerate(q)) for q in QUADS]
        path.write_text("# a cube\n" + "\n".join(rows) + "\n")
    else:
        path = tmp_path / "cube.ply"
        path.write_bytes(ply_bytes(CUBE, QUADS, kind))
    v, f, info = read_mesh(path, return_info=True)
    assert np.array_equal(v, CUBE) and np.array_equal(f, FANS)
    assert info["triangulated_polygons"] == 6 and info["ear_clipped"] == 0
    g = load_mesh(path, dtype=torch.float64)
    assert g.num_nodes - g.num_edges // 2 + g.face.shape[1] == 2
    assert abs(float(face_holonomy(g).sum()) - 4 * math.pi) < 1e-8


def test_mixed_polygons_keep_file_order_and_a_concave_one_is_ear_clipped(tmp_path):
    # a square split into a triangle, a quad and a concave pentagon (reflex corner at vertex 6)
    v = np.array([[0, 0, 0], [2, 0, 0], [2, 2, 0], [0, 2, 0], [3, 0, 0], [3, 2, 0], [1, 0.5, 0], [1, 3, 0.0]])
    polygons = [[1, 4, 5], [0, 1, 2, 3], [3, 2, 5, 7], [0, 4, 5, 6, 3][::1]]
    polygons[3] = [0, 1, 2, 6, 3]  # (0,0) (2,0) (2,2) (1,0.5) (0,2): a fan from 0 would fold
    path = tmp_path / "mixed.off"
    path.write_text(off_text(v, polygons))
    _, f, info = read_mesh(path, return_info=True)
    assert info["triangulated_polygons"] == 3 and info["ear_clipped"] == 1
    assert f[:3].tolist() == [[1, 4, 5], [0, 1, 2], [0, 2, 3]] and f[3:5].tolist() == [[3, 2, 5], [3, 5, 7]]
    pent = f[5:]
    assert len(pent) == 3 and set(pent.ravel()) == {0, 1, 2, 6, 3}
    areas = [signed_area(v[t, :2]) for t in pent]  # each keeps the winding; together they tile it
    assert min(areas) > 0 and abs(sum(areas) - signed_area(v[polygons[3], :2])) < 1e-12


def test_truncated_empty_and_foreign_files_are_named(tmp_path):
    whole = off_text(CUBE, QUADS).splitlines()
    cases = {
        "few_vertices.off": ("\n".join(whole[:4]), "ends after 2 of 8 vertices"),
        "few_faces.off": ("\n".join(whole[:13]), "ends after 3 of 6 faces"),
        "short_face.off": ("\n".join(whole[:10] + ["4 0 1"]), "ends after 0 of 6 faces"),
        "empty.ply": ("", "is empty"),
        "words.off": ("hello world\n1 2 3\n", r"is not an OFF/PLY/OBJ file \(it starts with 'hello"),
        "words.obj": ("hello world\n", "is not an OFF/PLY/OBJ file"),
        "words.ply": ("solid ascii\n", "is not an OFF/PLY/OBJ file"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=f"{name} {message}" if "file" not in message else message):
            read_mesh(tmp_path / name)
    data = ply_bytes(CUBE, QUADS)
    (tmp_path / "cut.ply").write_bytes(data[: len(data) - 20])
    with pytest.raises(ValueError, match="cut.ply ends after 5 of 6 faces"):
        read_mesh(tmp_path / "cut.ply")
    (tmp_path / "cut_vertices.ply").write_bytes(data[: data.index(b"end_header") + 11 + 13 * 3 + 5])
    with pytest.raises(ValueError, match="ends after 3 of 8 vertices"):
        read_mesh(tmp_path / "cut_vertices.ply")
    ascii = ply_bytes(CUBE, QUADS, "ascii").decode().splitlines()
    (tmp_path / "cut_ascii.ply").write_text("\n".join(ascii[:-2]) + "\n")
    with pytest.raises(ValueError, match="ends after 4 of 6 faces"):
        read_mesh(tmp_path / "cut_ascii.ply")


@pytest.mark.parametrize("source,name", [
    ("pymeshlab", "bunny.obj"), ("pymeshlab", "airplane.obj"), ("pymeshlab", "cow.obj"),
    ("pymeshfix", "StanfordBunny.ply"), ("pymeshlab", "face000.ply"), ("pymeshlab", "bone.ply"),
    ("pyvista", "airplane.ply"), ("pyvista", "ant.ply"),
])
def test_real_files_read_as_trimesh_reads_them(source, name):
    path = require_data(source, name)
    v, f = read_mesh(path)
    oracle = trimesh.load(path, process=False, force="mesh")
    assert np.array_equal(v, np.asarray(oracle.vertices)) and np.array_equal(f, np.asarray(oracle.faces))
