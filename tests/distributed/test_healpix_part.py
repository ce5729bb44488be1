"""healpix_part, built from a part's own pixels, equals the part cut from the whole sky."""
import numpy as np
import pytest
import torch

from meshgdl.distributed import build_part, healpix_assignment, healpix_part
from meshgdl.geometry import healpix_graph


def _sky_mask(nside):
    import healpy as hp

    theta, _ = hp.pix2ang(nside, np.arange(12 * nside ** 2), nest=True)
    return np.abs(np.cos(theta)) > 0.3


@pytest.mark.parametrize("nside, num_parts, masked", [(4, 5, False), (8, 3, True), (8, 16, True)])
def test_healpix_part_equals_the_cut_of_the_whole_sky(nside, num_parts, masked):
    mask = _sky_mask(nside) if masked else None
    graph = healpix_graph(nside, mask=mask)
    assignment = healpix_assignment(graph, num_parts)
    for rank in range(num_parts):
        want, got = build_part(graph, assignment, rank), healpix_part(nside, num_parts, rank, mask=mask)
        assert torch.equal(got.node_global, want.node_global) and got.num_owned == want.num_owned
        assert got.send_counts == want.send_counts and got.recv_counts == want.recv_counts
        assert torch.equal(got.node_global[got.send_index], want.node_global[want.send_index])
        assert torch.equal(got.node_global[got.graph.edge_index], want.node_global[want.graph.edge_index])
        for key in ("edge_logmap", "edge_transport", "pos", "frame", "pixel", "node_area"):
            assert torch.equal(got.graph[key], want.graph[key]), key


def test_healpix_part_checks_rank():
    with pytest.raises(ValueError, match=r"rank must be in 0..1"):
        healpix_part(2, 2, 2)


@pytest.mark.parametrize("nside, num_parts", [(1, 2), (2, 12), (8, 2), (8, 3), (8, 5), (8, 7), (16, 16), (16, 48)])
def test_closed_form_halo_sizes_equal_the_tables(nside, num_parts):
    from meshgdl.distributed import healpix_halo_sizes, partition_graph

    parts = partition_graph(healpix_graph(nside), num_parts)
    sizes = healpix_halo_sizes(nside, num_parts)
    assert sizes["owned"].tolist() == [p.num_owned for p in parts]
    assert sizes["halo"].tolist() == [p.num_halo for p in parts]
    assert sizes["sent"].tolist() == [sum(p.send_counts) for p in parts]
