"""HEALPix nested-range and METIS assignments."""
import numpy as np
import pytest
import torch

from meshgdl.distributed import assign_parts, healpix_assignment, metis_assignment
from meshgdl.geometry import healpix_graph

from .cases import icosphere_graph, sky_graph


@pytest.mark.parametrize("num_parts, per_part", [(2, 6), (3, 4), (12, 1)])
def test_full_sky_splits_into_base_pixels(num_parts, per_part):
    nside = 4
    graph = healpix_graph(nside)
    parts = healpix_assignment(graph, num_parts)
    base = graph.pixel // nside ** 2
    assert torch.equal(parts, base // per_part)


def test_full_sky_uses_sub_blocks_when_base_pixels_do_not_divide():
    nside = 4
    graph = healpix_graph(nside)
    parts = healpix_assignment(graph, 16)  # 48 level-1 blocks of 4 pixels, 3 a part
    assert torch.equal(parts, graph.pixel // (3 * 4))


def test_ring_order_gets_the_nested_ranges():
    nested, ring = healpix_graph(4), healpix_graph(4, nest=False)
    import healpy as hp

    to_nested = torch.from_numpy(hp.ring2nest(4, ring.pixel.numpy()))
    assert torch.equal(healpix_assignment(ring, 5), healpix_assignment(nested, 5)[to_nested])


@pytest.mark.parametrize("num_parts", [2, 3, 5, 7])
def test_partial_sky_parts_are_balanced_ranges_of_whole_blocks(num_parts):
    graph = sky_graph()
    parts = healpix_assignment(graph, num_parts).numpy()
    pixel = graph.pixel.numpy()
    assert (np.diff(parts[np.argsort(pixel)]) >= 0).all()  # consecutive ranges of the nested order
    sizes = np.bincount(parts, minlength=num_parts)
    assert sizes.min() > 0 and sizes.max() <= 1.05 * len(pixel) / num_parts
    # the coarsest blocks that no part boundary cuts hold at least 4 pixels: whole blocks, not pixels
    for shift in (2,):
        block = pixel >> shift
        for b in np.unique(block):
            assert len(np.unique(parts[block == b])) == 1


def test_explicit_level_and_errors():
    graph = healpix_graph(4)
    assert torch.equal(healpix_assignment(graph, 2, level=1), graph.pixel // 96)
    with pytest.raises(ValueError, match=r"level must be in 0..2"):
        healpix_assignment(graph, 2, level=3)
    with pytest.raises(ValueError, match="cannot split 192 nodes into 193"):
        healpix_assignment(graph, 193)
    with pytest.raises(ValueError, match="needs a graph from meshgdl.geometry.healpix_graph"):
        healpix_assignment(icosphere_graph(), 2)
    with pytest.raises(ValueError, match="method must be 'healpix' or 'metis'"):
        assign_parts(graph, 2, method="kmeans")


def test_metis_balances_and_cuts_few_edges():
    pytest.importorskip("pymetis")
    graph = icosphere_graph()
    parts = assign_parts(graph, 4)  # a mesh: METIS by default
    assert torch.equal(parts, metis_assignment(graph, 4))  # the seed makes it repeatable
    sizes = torch.bincount(parts, minlength=4)
    assert int(sizes.min()) > 0 and int(sizes.max()) <= 1.03 * graph.num_nodes / 4 + 1
    src, dst = graph.edge_index
    cut = int((parts[src] != parts[dst]).sum())
    shuffled = parts[torch.randperm(graph.num_nodes, generator=torch.Generator().manual_seed(0))]
    assert cut < (shuffled[src] != shuffled[dst]).sum() / 4  # far fewer than a random split of the same sizes


def test_metis_missing_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pymetis", None)
    with pytest.raises(ImportError, match=r"pip install 'meshgdl\[partition\]'"):
        metis_assignment(icosphere_graph(), 2)
