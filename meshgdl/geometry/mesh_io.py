"""Reading mesh files: OFF, PLY and OBJ by our own readers, GIFTI by nibabel, others by trimesh.

OFF, PLY (ascii, binary little and big endian) and OBJ files may mix triangles with larger
polygons, which :func:`~meshgdl.geometry.triangulate.triangulate` cuts into triangles. Our readers
name what is wrong with a bad file ("FILE ends after N of M vertices").
"""
from __future__ import annotations

import logging
import os

import numpy as np

from .triangulate import triangulate

log = logging.getLogger("meshgdl")

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


class _NotThisFormat(ValueError):
    pass


def read_mesh(path: str | os.PathLike, *, return_info: bool = False):
    """Read ``(vertices [V, 3] float64, faces [F, 3] int64)`` from OBJ, PLY, OFF, STL or GIFTI.

    Polygons with more than three corners (OFF, PLY, OBJ) are triangulated: a fan for convex
    polygons, ear clipping in the polygon's best-fit plane otherwise; the count is logged. Vertex
    order is kept as in the file (per-vertex labels stay aligned), except for STL, which stores
    every triangle separately and is merged by trimesh, and OBJ, whose vertices that no face uses
    are dropped (the others keep their order, as with trimesh).

    Args:
        path: the mesh file.
        return_info (bool): also return a dict with ``format``, ``triangulated_polygons`` (how many
            polygons were cut into triangles) and ``ear_clipped`` (how many of those were not
            convex). (default: ``False``)

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: an empty, truncated or malformed file, named with what is wrong
            ("FILE ends after N of M vertices").
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no mesh file at {path}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path} is empty")
    lower = path.lower()
    info = {"format": os.path.splitext(lower.removesuffix(".gz"))[1].lstrip("."),
            "triangulated_polygons": 0, "ear_clipped": 0}
    readers = {".off": _read_off, ".ply": _read_ply, ".obj": _read_obj}
    suffix = os.path.splitext(lower)[1]
    if lower.endswith((".gii", ".gii.gz")):
        vertices, faces = _read_gifti(path)
    elif suffix in readers:
        with open(path, "rb") as file:
            data = file.read()
        try:
            vertices, polygons = readers[suffix](data, path)
        except _NotThisFormat as err:
            raise ValueError(f"{path} is not an OFF/PLY/OBJ file ({err})") from None
        if not len(polygons):
            raise ValueError(f"{path} holds no faces (a point cloud? use point_cloud_graph)")
        try:
            faces, info["triangulated_polygons"], info["ear_clipped"] = triangulate(vertices, polygons)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        if suffix == ".obj":
            vertices, faces = _drop_unreferenced(vertices, faces)
        if info["triangulated_polygons"]:
            log.info("read_mesh: triangulated %d polygons of %s (%d by ear clipping, the rest as fans)",
                     info["triangulated_polygons"], path, info["ear_clipped"])
    else:
        vertices, faces = _read_trimesh(path, lower)
    return (vertices, faces, info) if return_info else (vertices, faces)


def _drop_unreferenced(vertices, faces):
    """OBJ files often list vertices that no face uses; drop them, keeping the order (as trimesh)."""
    if not len(faces) or int(faces.min()) < 0 or int(faces.max()) >= len(vertices):
        return vertices, faces  # mesh_graph names out-of-range ids
    used = np.zeros(len(vertices), bool)
    used[faces.reshape(-1)] = True
    if used.all():
        return vertices, faces
    log.info("read_mesh: dropped %d OBJ vertices that no face uses", int((~used).sum()))
    return vertices[used], (np.cumsum(used) - 1)[faces]


def _read_gifti(path):
    try:
        import nibabel
    except ImportError:
        raise ImportError("reading GIFTI needs nibabel: pip install 'meshgdl[gifti]'") from None
    img = nibabel.load(path)
    try:
        vertices, faces = img.agg_data(("pointset", "triangle"))
    except Exception:
        raise ValueError(f"{path} holds no surface (needs a pointset and a triangle array)") from None
    return np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64)


def _read_trimesh(path, lower):
    import trimesh

    try:
        mesh = trimesh.load(path, process=lower.endswith(".stl"), force="mesh")
    except Exception as err:
        raise ValueError(f"could not read a mesh from {path}: {err}") from None
    if len(mesh.faces) == 0:
        raise ValueError(f"{path} holds no triangles (a point cloud? use point_cloud_graph)")
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)


# ---------------------------------------------------------------------- OFF
def _lines(data: bytes) -> list:
    text = data.decode("latin-1")
    return [line for line in (raw.split("#", 1)[0].strip() for raw in text.splitlines()) if line]


def _read_off(data: bytes, path: str):
    lines = _lines(data)
    if not lines or not lines[0].split()[0].endswith("OFF"):
        start = lines[0][:20] if lines else ""
        raise _NotThisFormat(f"it starts with {start!r}, not 'OFF'")
    head = lines[0].split()[1:]
    body = 1
    if not head:
        if len(lines) < 2:
            raise ValueError(f"{path} ends after the OFF header, before the vertex and face counts")
        head, body = lines[1].split(), 2
    try:
        nv, nf = int(head[0]), int(head[1])
    except (ValueError, IndexError):
        raise _NotThisFormat(f"the counts line {' '.join(head)!r} is not 'V F E'") from None
    rows = lines[body:body + nv]
    if len(rows) < nv:
        raise ValueError(f"{path} ends after {len(rows)} of {nv} vertices")
    try:
        vertices = np.array([row.split()[:3] for row in rows], dtype=np.float64).reshape(nv, 3)
    except ValueError:
        raise ValueError(f"{path}: a vertex line holds no 3 coordinates") from None
    face_rows = lines[body + nv:body + nv + nf]
    polygons = []
    for i, row in enumerate(face_rows):
        ids = row.split()
        try:
            k = int(ids[0])
            poly = [int(x) for x in ids[1:k + 1]]
        except ValueError:
            raise ValueError(f"{path}: face {i} is not 'k i_1 .. i_k': {row[:60]!r}") from None
        if len(poly) < k:
            raise ValueError(f"{path} ends after {i} of {nf} faces (face {i} lists {len(poly)} of {k} vertex ids)")
        polygons.append(poly)
    if len(polygons) < nf:
        raise ValueError(f"{path} ends after {len(polygons)} of {nf} faces")
    return vertices, polygons


# ---------------------------------------------------------------------- OBJ
def _read_obj(data: bytes, path: str):
    vertices, polygons = [], []
    for number, raw in enumerate(data.decode("latin-1").splitlines(), 1):
        line = raw.split("#", 1)[0].split()
        if not line:
            continue
        try:
            if line[0] == "v":
                vertices.append([float(x) for x in line[1:4]])
            elif line[0] == "f":
                n = len(vertices)
                ids = [int(tok.split("/", 1)[0]) for tok in line[1:]]
                polygons.append([i - 1 if i > 0 else n + i for i in ids])
        except ValueError:
            if not vertices and not polygons:
                raise _NotThisFormat(f"line {number} is {raw[:40]!r}") from None
            raise ValueError(f"{path}: line {number} is not a valid 'v' or 'f' line: {raw[:60]!r}") from None
    if not vertices:
        raise _NotThisFormat("it has no 'v' lines")
    if any(len(v) != 3 for v in vertices):
        raise ValueError(f"{path}: a 'v' line holds fewer than 3 coordinates")
    return np.array(vertices, dtype=np.float64), polygons


# ---------------------------------------------------------------------- PLY
def _read_ply(data: bytes, path: str):
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise _NotThisFormat(f"it starts with {data[:20]!r}, not a 'ply' header")
    body = end + len(b"end_header")
    body += 2 if data[body:body + 2] == b"\r\n" else 1
    fmt, elements = None, []
    for line in data[:end].decode("latin-1").splitlines():
        words = line.split()
        if not words:
            continue
        try:
            if words[0] == "format":
                fmt = words[1]
            elif words[0] == "element":
                elements.append((words[1], int(words[2]), []))
            elif words[0] == "property" and words[1] == "list":
                elements[-1][2].append((words[4], _PLY_TYPES[words[2]], _PLY_TYPES[words[3]]))
            elif words[0] == "property":
                elements[-1][2].append((words[2], None, _PLY_TYPES[words[1]]))
        except (KeyError, IndexError, ValueError):
            raise _NotThisFormat(f"the header line {line!r} is malformed") from None
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise _NotThisFormat(f"unknown format {fmt!r}")
    read = _ply_ascii if fmt == "ascii" else _ply_binary
    order = "<" if fmt == "binary_little_endian" else ">"
    state = {"offset": body, "lines": None}
    vertices, polygons = None, None
    for name, count, props in elements:
        what = {"vertex": "vertices", "face": "faces"}.get(name, f"{name} elements")
        columns = read(data, state, count, props, order, path, what)
        if name == "vertex":
            try:
                # round ascii values to the declared type, as binary files are
                types = {prop: item for prop, _, item in props}
                vertices = np.stack([np.asarray(columns[c], dtype=types[c]).astype(np.float64) for c in "xyz"], 1)
            except KeyError:
                raise ValueError(f"{path}: the vertex element has no x, y, z properties") from None
        elif name == "face":
            key = next((k for k in ("vertex_indices", "vertex_index") if k in columns), None)
            if key is None:
                raise ValueError(f"{path}: the face element has no 'vertex_indices' list")
            polygons = columns[key]
    if vertices is None:
        raise ValueError(f"{path} holds no vertex element")
    return vertices, [] if polygons is None else polygons


def _ply_ascii(data, state, count, props, order, path, what):
    if state["lines"] is None:
        state["lines"] = iter(data[state["offset"]:].decode("latin-1").splitlines())
    columns = {name: [] for name, _, _ in props}
    for row in range(count):
        words = next(state["lines"], None)
        while words is not None and not words.strip():
            words = next(state["lines"], None)
        if words is None:
            raise ValueError(f"{path} ends after {row} of {count} {what}")
        words, k = words.split(), 0
        try:
            for name, count_type, _ in props:
                if count_type is None:
                    columns[name].append(float(words[k]))
                    k += 1
                else:
                    n = int(words[k])
                    columns[name].append([int(x) for x in words[k + 1:k + 1 + n]])
                    if len(columns[name][-1]) < n:
                        raise IndexError
                    k += 1 + n
        except (ValueError, IndexError):
            raise ValueError(f"{path}: row {row} of the {what} does not match the header") from None
    return columns


def _ply_binary(data, state, count, props, order, path, what):
    offset = state["offset"]
    lists = [p for p in props if p[1] is not None]
    # fast path: every list as long as the first row's (all triangles, say) gives fixed-size rows
    fields, head = [], offset
    for name, count_type, item in props:
        if count_type is None:
            fields.append((name, order + item))
            head += np.dtype(item).itemsize
        else:
            if head + np.dtype(count_type).itemsize > len(data):
                break
            n = int(np.frombuffer(data, order + count_type, 1, head)[0])
            fields += [("#" + name, order + count_type), (name, order + item, (n,))]
            head += np.dtype(count_type).itemsize + n * np.dtype(item).itemsize
    if len(fields) == len(props) + len(lists) and count:
        row = np.dtype(fields)
        have = min(count, (len(data) - offset) // row.itemsize)
        table = np.frombuffer(data, row, have, offset)
        if all(bool((table["#" + name] == table[name].shape[1]).all()) for name, _, _ in lists):
            if have < count:
                raise ValueError(f"{path} ends after {have} of {count} {what}")
            state["offset"] = offset + count * row.itemsize
            return {name: table[name] for name, _, _ in props}
    columns = {name: [] for name, _, _ in props}
    for r in range(count):
        for name, count_type, item in props:
            size = np.dtype(item).itemsize
            if count_type is None:
                if offset + size > len(data):
                    raise ValueError(f"{path} ends after {r} of {count} {what}")
                columns[name].append(np.frombuffer(data, order + item, 1, offset)[0])
                offset += size
                continue
            csize = np.dtype(count_type).itemsize
            if offset + csize > len(data):
                raise ValueError(f"{path} ends after {r} of {count} {what}")
            n = int(np.frombuffer(data, order + count_type, 1, offset)[0])
            offset += csize
            if offset + n * size > len(data):
                raise ValueError(f"{path} ends after {r} of {count} {what}")
            columns[name].append(np.frombuffer(data, order + item, n, offset).tolist())
            offset += n * size
    state["offset"] = offset
    return columns
