r"""Polygons to triangles that keep their winding.

A convex polygon :math:`(p_0, \dots, p_{k-1})` becomes the fan :math:`(p_0, p_i, p_{i+1})`,
:math:`i = 1 \dots k-2`; a polygon that is not convex (some corner turns against Newell's normal
:math:`n = \sum_i p_i \times p_{i+1}`) is ear clipped in the plane orthogonal to :math:`n`.
"""
from __future__ import annotations

import numpy as np


def triangulate(vertices: np.ndarray, polygons: list) -> tuple[np.ndarray, int, int]:
    """Triangles ``[F, 3]`` of polygons (vertex-id lists, or a ``[P, k]`` array), each keeping
    its winding.

    Returns the triangles, the number of polygons with more than three corners and how many of
    those were not convex (ear clipped). Triangles come polygon by polygon, in file order.
    """
    if isinstance(polygons, np.ndarray):
        if polygons.shape[1] == 3:
            return polygons.astype(np.int64), 0, 0
        polygons = polygons.tolist()
    sizes = np.fromiter(map(len, polygons), dtype=np.int64, count=len(polygons))
    if int(sizes.min()) < 3:
        bad = int(np.argmax(sizes < 3))
        raise ValueError(f"face {bad} has {sizes[bad]} corners; a face needs at least 3")
    if bool((sizes == 3).all()):
        return np.asarray(polygons, dtype=np.int64).reshape(-1, 3), 0, 0
    pieces, clipped = [], 0
    for k in np.unique(sizes):
        which = np.flatnonzero(sizes == k)
        poly = np.array([polygons[i] for i in which], dtype=np.int64)  # [P, k]
        if k == 3:
            pieces.append((which, poly[:, None, :]))
            continue
        if int(poly.max()) >= len(vertices) or int(poly.min()) < 0:
            continue  # out-of-range ids: mesh_graph names them; fan them without looking
        fan = np.stack([np.repeat(poly[:, :1], k - 2, 1), poly[:, 1:-1], poly[:, 2:]], -1)  # [P, k-2, 3]
        convex = _is_convex(vertices[poly])
        for p in np.flatnonzero(~convex):
            fan[p] = _ear_clip(vertices, poly[p])
            clipped += 1
        pieces.append((which, fan))
    if len(pieces) < len(np.unique(sizes)):  # some polygon had out-of-range ids
        return _fan_all(polygons), int((sizes > 3).sum()), clipped
    order = np.argsort(np.concatenate([w for w, _ in pieces]), kind="stable")
    tris = [t for _, block in pieces for t in block]
    faces = np.concatenate([tris[i] for i in order]).astype(np.int64)
    return faces, int((sizes > 3).sum()), clipped


def _fan_all(polygons):
    return np.array([(p[0], p[i], p[i + 1]) for p in polygons for i in range(1, len(p) - 1)], dtype=np.int64)


def _newell(points: np.ndarray) -> np.ndarray:
    """Newell's normal of polygons ``[P, k, 3] -> [P, 3]`` (twice the vector area)."""
    return np.cross(points, np.roll(points, -1, axis=-2)).sum(-2)


def _is_convex(points: np.ndarray) -> np.ndarray:
    """Whether each polygon ``[P, k, 3]`` turns the same way as its normal at every corner."""
    normal = _newell(points)
    edge = np.roll(points, -1, axis=-2) - points
    turn = np.cross(edge, np.roll(edge, -1, axis=-2))
    scale = np.einsum("pka,pka->p", edge, edge)
    return (np.einsum("pka,pa->pk", turn, normal) >= -1e-12 * scale[:, None] ** 2).all(-1)


def _ear_clip(vertices: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Ear clipping of one simple polygon in its best-fit plane: ``[k] -> [k - 2, 3]``."""
    p = vertices[poly]
    n = _newell(p[None])[0]
    u = np.cross(n, [1.0, 0.0, 0.0] if abs(n[0]) < 0.9 * np.linalg.norm(n) else [0.0, 1.0, 0.0])
    w = np.cross(n, u)
    xy = np.stack([p @ u, p @ w], 1)  # counter-clockwise about n

    def cross(a, b, c):
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    left, out = list(range(len(poly))), []
    while len(left) > 3:
        for i in range(len(left)):
            a, b, c = left[i - 1], left[i], left[(i + 1) % len(left)]
            if cross(xy[a], xy[b], xy[c]) <= 0:
                continue  # a reflex corner is no ear
            inside = any(
                cross(xy[a], xy[b], xy[q]) >= 0 and cross(xy[b], xy[c], xy[q]) >= 0 and cross(xy[c], xy[a], xy[q]) >= 0
                for q in left if q not in (a, b, c)
            )
            if not inside:
                out.append((a, b, c))
                del left[i]
                break
        else:  # no ear (a self-intersecting or degenerate polygon): fan the rest
            out += [(left[0], left[j], left[j + 1]) for j in range(1, len(left) - 1)]
            left = left[:0]
    if len(left) == 3:
        out.append(tuple(left))
    return poly[np.array(out)]
