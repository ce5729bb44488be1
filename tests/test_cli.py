import os
import re

import healpy as hp
import numpy as np
import pytest
import torch
import trimesh

import meshgdl.geometry
import meshgdl.geometry.healpix_io
from meshgdl import FramedGraph
from meshgdl.cli import main


def write_sphere(path):
    m = trimesh.creation.icosphere(subdivisions=2)
    m.export(path)
    return m


def test_info_reports_gauss_bonnet_for_a_mesh_file(tmp_path, capsys):
    write_sphere(tmp_path / "s.ply")
    assert main(["info", str(tmp_path / "s.ply")]) == 0
    out = capsys.readouterr().out
    assert "162 nodes" in out and "2 pi x 2.0000" in out and "chi = 2 pi x 2" in out


def test_info_names_folded_faces_and_non_manifold_vertices_as_the_cause(tmp_path, capsys):
    """The corner tetrahedron folds its normals' Gauss image: the normal connection misses
    Gauss-Bonnet, and info says why (the folded face, not a guess about resolution); the intrinsic
    connection holds. Two tetrahedra sharing a vertex are not a manifold, and info names the vertex."""
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]])
    tet = trimesh.convex.convex_hull(v)
    tet.export(tmp_path / "t.ply")
    assert main(["info", str(tmp_path / "t.ply"), "--connection", "normal"]) == 0
    out = capsys.readouterr().out
    assert "connection  normal" in out and "FAILS by 2 pi x -2.0000" in out
    assert "folded faces 1 " in out and "cause: the folded faces" in out and "coarse" not in out
    assert main(["info", str(tmp_path / "t.ply")]) == 0
    out = capsys.readouterr().out
    assert "connection  intrinsic" in out and "(holds)" in out and "cause" not in out
    pinched = trimesh.util.concatenate([tet, trimesh.Trimesh(-v * [1, 1.2, 0.9], tet.faces[:, ::-1])])
    pinched.merge_vertices()  # the two corners at the origin become one vertex
    pinched.export(tmp_path / "p.ply")
    assert main(["info", str(tmp_path / "p.ply")]) == 0
    out = capsys.readouterr().out
    assert "FAILS" in out and "1 pinch vertices, whose faces form more than one fan (first: vertex 0)" in out


def test_info_counts_a_non_manifold_edge_once(tmp_path, capsys):
    """Three faces on one edge: its two ends are not pinch vertices (their faces share that edge)."""
    v = np.array([[0, 0, 0], [1, 0, 0], [0.5, 1, 0], [0.5, -1, 0], [0.5, 0, 1.0]])
    trimesh.Trimesh(v, [[0, 1, 2], [1, 0, 3], [0, 1, 4]], process=False).export(tmp_path / "fin.ply")
    assert main(["info", str(tmp_path / "fin.ply")]) == 0
    out = capsys.readouterr().out
    assert "1 edges of more than two faces (first: 0-1)" in out and "fan" not in out


def test_info_on_a_float32_graph_of_a_fine_clean_mesh_holds(tmp_path, capsys):
    """float32 transports round at 1e-7 a face: the check's tolerance follows the graph's dtype."""
    trimesh.creation.icosphere(subdivisions=5).export(tmp_path / "s.ply")
    for connection in ("intrinsic", "normal"):
        out = tmp_path / f"{connection}.pt"
        assert main(["convert", "mesh", str(tmp_path / "s.ply"), "-o", str(out), "--connection", connection]) == 0
        assert FramedGraph.load(out).connection == connection
        assert main(["info", str(out)]) == 0
        text = capsys.readouterr().out
        assert f"connection  {connection}" in text and "(holds)" in text and "cause" not in text


def test_info_adds_the_boundary_term_on_a_mesh_with_boundary(tmp_path, capsys):
    m = trimesh.creation.icosphere(subdivisions=2)
    cap = trimesh.Trimesh(m.vertices, m.faces[m.vertices[m.faces].mean(1)[:, 2] < 0.5])
    cap.remove_unreferenced_vertices()
    cap.export(tmp_path / "c.ply")
    for connection in ("intrinsic", "normal"):
        assert main(["info", str(tmp_path / "c.ply"), "--connection", connection]) == 0
        out = capsys.readouterr().out
        assert "+ boundary turning" in out and "2 pi x chi = 2 pi x 1  (holds)" in out


def test_convert_writes_a_graph_and_refuses_to_overwrite(tmp_path, capsys):
    m = write_sphere(tmp_path / "s.obj")
    out = tmp_path / "s.pt"
    assert main(["convert", "mesh", str(tmp_path / "s.obj"), "-o", str(out), "--dtype", "float64"]) == 0
    g = FramedGraph.load(out)
    assert g.num_nodes == len(m.vertices) and g.frame.dtype == torch.float64
    before = out.read_bytes()
    assert main(["convert", "mesh", str(tmp_path / "s.obj"), "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["convert", "mesh", str(tmp_path / "s.obj"), "-o", str(out), "--force"]) == 0
    assert main(["info", str(out)]) == 0


def test_bad_files_give_a_message_not_a_traceback(tmp_path, capsys):
    assert main(["info", str(tmp_path / "absent.ply")]) == 2
    assert "no file" in capsys.readouterr().err
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, np.nan]], float)
    (tmp_path / "nan.obj").write_text("".join(f"v {a} {b} {c}\n" for a, b, c in v) + "f 1 2 3\nf 1 3 4\n")
    assert main(["convert", "mesh", str(tmp_path / "nan.obj"), "-o", str(tmp_path / "x.pt")]) == 2
    assert "NaN" in capsys.readouterr().err


def test_polygon_files_convert_and_say_how_many_polygons_were_triangulated(tmp_path, capsys):
    from tests.geometry.test_mesh_io import CUBE, QUADS, off_text

    (tmp_path / "cube.off").write_text(off_text(CUBE, QUADS))
    out = tmp_path / "cube.pt"
    assert main(["convert", "mesh", str(tmp_path / "cube.off"), "-o", str(out), "--dtype", "float32"]) == 0
    assert "triangulated 6 polygons (6 as fans, 0 by ear clipping)" in capsys.readouterr().out
    g = FramedGraph.load(out)
    assert g.face.shape[1] == 12 and g.frame.dtype == torch.float32
    assert main(["info", str(tmp_path / "cube.off")]) == 0
    assert "triangulated 6 polygons" in capsys.readouterr().out
    (tmp_path / "cut.off").write_text("OFF\n8 6 0\n0 0 0\n")
    assert main(["info", str(tmp_path / "cut.off")]) == 2
    assert "cut.off ends after 1 of 8 vertices" in capsys.readouterr().err


# ---------------------------------------------------------------- every error: one line, code 2, no file
def fails(argv, capsys, message, code=2):
    """Run the command, check it fails with one line on stderr that matches ``message``."""
    assert main([str(a) for a in argv]) == code
    err = capsys.readouterr().err
    # progress bars of work that started (each update begins with "\r") may come before the message
    lines = [line for line in err.split("\n") if line and not line.startswith("\r")]
    assert len(lines) == 1 and lines[0].startswith("meshgdl: ") and err.endswith("\n"), err
    assert re.search(message, err), err
    assert "Traceback" not in err and "=True" not in err
    return err


def no_leftovers(folder, *expected):
    assert sorted(p.name for p in folder.iterdir() if p.name != "cache") == sorted(expected)


@pytest.fixture
def no_work(monkeypatch, capsys):
    """Fail the test if a command starts building a graph."""
    def build(*args, **kwargs):
        raise AssertionError("the work started before the arguments were checked")

    for name in ("read_mesh", "load_mesh", "mesh_graph"):
        monkeypatch.setattr(meshgdl.geometry, name, build)
    monkeypatch.setattr(meshgdl.geometry.healpix_io, "healpix_map_graph", build)
    yield
    assert "\r" not in capsys.readouterr().err  # no progress bar: nothing started


def test_argument_errors_are_caught_before_the_work(tmp_path, capsys, no_work):
    write_sphere(tmp_path / "s.obj")
    (tmp_path / "x").mkdir()
    (tmp_path / "s.pt").write_bytes(b"old")
    (tmp_path / "s.txt").write_text("v 0 0 0\n")
    convert = ["convert", "mesh", tmp_path / "s.obj", "-o"]
    fails(convert + [tmp_path / "absent" / "s.pt"], capsys, r"no folder .*absent for .*s\.pt; create it first")
    fails(convert + [tmp_path / "x"], capsys, "x is a folder; give the output a file name")
    fails(convert + [tmp_path / "s.pt"], capsys, "s.pt exists; pass --force to replace it")
    fails(convert + [tmp_path / "s.obj" / "s.pt"], capsys, "s.obj is a file, not a folder")
    fails(["convert", "mesh", tmp_path / "absent.obj", "-o", tmp_path / "a.pt"], capsys, "no file at .*absent.obj")
    fails(["convert", "mesh", tmp_path / "x", "-o", tmp_path / "a.pt"], capsys, "x is a folder; give a mesh file")
    fails(["convert", "mesh", tmp_path / "s.txt", "-o", tmp_path / "a.pt"], capsys,
          r"s.txt does not end in \.obj, \.ply.*; give a mesh file")
    fails(convert + [tmp_path / "a.pt", "--dtype", "float16"], capsys, "invalid choice: 'float16'.*--help")
    fails(["convert", "mesh", tmp_path / "s.obj"], capsys, "required: -o/--output")
    fails(["frobnicate"], capsys, "invalid choice: 'frobnicate'")
    fails(["convert", "healpix", tmp_path / "s.obj", "-o", tmp_path / "a.pt"], capsys, "give a FITS map")
    fails(["info", tmp_path / "s.txt"], capsys, "give a mesh or a graph file")
    no_leftovers(tmp_path, "s.obj", "s.pt", "s.txt", "x")
    assert (tmp_path / "s.pt").read_bytes() == b"old" and list((tmp_path / "x").iterdir()) == []


def test_healpix_arguments_are_checked_before_the_work(tmp_path, capsys, no_work):
    hp.write_map(str(tmp_path / "m.fits"), np.arange(48.0))
    fails(["convert", "healpix", tmp_path / "m.fits", "-o", tmp_path / "no" / "m.pt"], capsys, "no folder")
    fails(["convert", "healpix", tmp_path / "m.fits", "-o", tmp_path], capsys, "is a folder")
    fails(["convert", "healpix", tmp_path / "m.fits", "-o", tmp_path / "m.pt", "--mask", tmp_path / "k.fits"],
          capsys, "no file at .*k.fits")
    no_leftovers(tmp_path, "m.fits")


def test_damaged_and_foreign_graph_files(tmp_path, capsys):
    hp.write_map(str(tmp_path / "m.fits"), np.arange(48.0))
    assert main(["convert", "healpix", str(tmp_path / "m.fits"), "-o", str(tmp_path / "m.pt"), "--quiet"]) == 0
    good = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "text.pt").write_text("hello\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "cut.pt").write_bytes(good[: len(good) // 2])
    torch.save({"weights": torch.zeros(3)}, tmp_path / "model.pt")
    write_sphere(tmp_path / "s.obj")
    assert main(["convert", "mesh", str(tmp_path / "s.obj"), "-o", str(tmp_path / "mesh.pt")]) == 0
    capsys.readouterr()
    for name, message in [("text.pt", "not a torch file"), ("empty.pt", "is empty"),
                          ("cut.pt", "truncated or damaged"), ("model.pt", "a torch file of another kind"),
                          ("mesh.pt", "is not a HEALPix graph .*meshgdl convert healpix")]:
        fails(["plot", tmp_path / name, "-o", tmp_path / "map.png"], capsys, f"{name} .*{message}")
        if name != "mesh.pt":
            fails(["info", tmp_path / name], capsys, f"{name} .*not a meshgdl graph file|damaged")
    fails(["plot", tmp_path / "m.pt", "-o", tmp_path / "map.xyz"], capsys, "cannot draw into .*map.xyz: give an image")
    fails(["plot", tmp_path / "m.pt", "-o", tmp_path / "no" / "map.png"], capsys, "no folder")
    assert not any(p.name.endswith((".png", ".xyz")) or "tmp" in p.name for p in tmp_path.iterdir())
    assert main(["plot", str(tmp_path / "m.pt"), "-o", str(tmp_path / "map.png"), "--field", "0"]) == 0


def test_library_keywords_read_as_flags(tmp_path, capsys):
    v = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nv 1 0 0\n"
    (tmp_path / "dup.obj").write_text(v + "f 1 2 3\nf 1 3 4\nf 5 4 3\n")
    fails(["convert", "mesh", tmp_path / "dup.obj", "-o", tmp_path / "d.pt"], capsys, "pass --repair to merge")
    no_leftovers(tmp_path, "dup.obj")


@pytest.mark.parametrize("error,code,message", [
    (PermissionError(13, "Permission denied"), 2, r"could not write .*s\.pt \(Permission denied\)"),
    (OSError(28, "No space left on device"), 2, r"could not write .*s\.pt \(No space left on device\)"),
    (RuntimeError("zip writer failed\nmore detail"), 2, "unexpected RuntimeError: zip writer failed more detail"),
    (KeyboardInterrupt(), 130, "interrupted"),
])
def test_failed_writes_leave_no_partial_file(tmp_path, capsys, monkeypatch, error, code, message):
    write_sphere(tmp_path / "s.obj")

    def broken_save(obj, f, *args, **kwargs):
        with open(f, "wb") as out:
            out.write(b"PK\x03\x04half")
        raise error

    monkeypatch.setattr(torch, "save", broken_save)
    fails(["convert", "mesh", tmp_path / "s.obj", "-o", tmp_path / "s.pt"], capsys, message, code)
    no_leftovers(tmp_path, "s.obj")


def test_unwritable_folder_is_refused_before_the_work(tmp_path, capsys, monkeypatch, no_work):
    write_sphere(tmp_path / "s.obj")
    monkeypatch.setattr(os, "access", lambda path, mode: mode != os.W_OK)  # tests run as root
    fails(["convert", "mesh", tmp_path / "s.obj", "-o", tmp_path / "s.pt"], capsys, r"cannot write in .* \(permission denied\)")


def test_verbose_shows_the_traceback_of_an_unexpected_error(tmp_path, capsys, monkeypatch):
    write_sphere(tmp_path / "s.obj")

    def broken(*args, **kwargs):
        raise RuntimeError("surprise")

    monkeypatch.setattr(meshgdl.geometry, "read_mesh", broken)
    fails(["convert", "mesh", tmp_path / "s.obj", "-o", tmp_path / "s.pt"], capsys, "unexpected RuntimeError: surprise")
    assert main(["-v", "convert", "mesh", str(tmp_path / "s.obj"), "-o", str(tmp_path / "s.pt")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.endswith("\nmeshgdl: unexpected RuntimeError: surprise\n")
