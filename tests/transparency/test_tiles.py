"""tlog-tiles arithmetic: paths, widths at a tree size, bundles, hashes within a tile."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import merkle, tiles
from crypto.tiles import BundleId, MalformedTile, TileId


def test_index_paths_from_spec():
    assert tiles.format_index(1234067) == "x001/x234/067"
    assert tiles.format_index(5) == "005"
    assert tiles.format_index(1000) == "x001/000"
    assert TileId(0, 1234067).path() == "tile/0/x001/x234/067"
    assert TileId(2, 0, 1).path() == "tile/2/000.p/1"
    assert BundleId(3, 17).path() == "tile/entries/003.p/17"


@pytest.mark.parametrize(
    "t", [TileId(0, 0), TileId(1, 1234067, 5), TileId(63, 999, 255), BundleId(0), BundleId(1001, 1)]
)
def test_path_roundtrip(t):
    assert tiles.parse_tile_path(t.path()) == t


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/5",
        "tile/0/0005",
        "tile/00/005",
        "tile/64/005",
        "tile/0/001/002",
        "tile/0/x000/001",
        "tile/0/005.p/256",
        "tile/0/005.p/0",
        "tile/0/005.p/05",
        "tile/0/005.p",
        "tile/entries/x01/000",
        "tiles/0/000",
        "tile/entries",
        "tile/-1/000",
        "tile/0/\u0665\u0665\u0665",
    ],
)
def test_bad_paths(path):
    with pytest.raises(MalformedTile):
        tiles.parse_tile_path(path)


def test_tiles_for_size_spec_example():
    ts = tiles.tiles_for_size(70000)
    level0 = [t for t in ts if t.level == 0]
    assert len([t for t in level0 if not t.is_partial]) == 273
    assert [t.width for t in level0 if t.is_partial] == [112]
    assert [(t.width) for t in ts if t.level == 1] == [256, 17]
    assert [(t.width) for t in ts if t.level == 2] == [1]
    assert [(t.level, t.width) for t in tiles.tiles_for_size(256)] == [(0, 256), (1, 1)]
    assert tiles.tile_at_size(0, 1, 256) is None
    assert len(tiles.bundles_for_size(70000)) == 274


def test_bundle_roundtrip_and_strictness():
    entries = [b"", b"a", b"x" * 300]
    data = tiles.encode_bundle(entries)
    assert tiles.decode_bundle(data, 3) == entries
    for bad, width in [(data, 2), (data, 4), (data + b"\x00", 3), (data[:-1], 3)]:
        with pytest.raises(MalformedTile):
            tiles.decode_bundle(bad, width)
    with pytest.raises(MalformedTile):
        tiles.encode_bundle([b"x" * 70000])


def test_tile_node_hash_matches_tree():
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(256)]
    tile = TileId(0, 0)
    assert tiles.tile_node_hash(tile, leaves, merkle.MerkleNode(8 - 1, 1)) == merkle.tree_hash(leaves[128:])
    assert tiles.tile_node_hash(tile, leaves, merkle.MerkleNode(0, 5)) == leaves[5]
    with pytest.raises(MalformedTile):
        tiles.tile_node_hash(TileId(0, 0, 100), leaves[:100], merkle.MerkleNode(7, 0))
    with pytest.raises(MalformedTile):
        tiles.decode_tile(b"\x00" * 33, TileId(0, 0, 1))


@given(st.text(max_size=60))
def test_fuzz_paths(s):
    try:
        t = tiles.parse_tile_path(s)
    except MalformedTile:
        return
    assert t.path() == s


@given(st.binary(max_size=300), st.integers(1, 256))
def test_fuzz_bundle(data, width):
    try:
        entries = tiles.decode_bundle(data, width)
    except MalformedTile:
        return
    assert tiles.encode_bundle(entries) == data
