import numpy as np
import torch
import trimesh

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
