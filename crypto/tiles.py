"""C2SP tlog-tiles arithmetic: tile coordinates, paths and entry bundles.

A hash tile at level ``L``, index ``N`` holds up to 256 Merkle Tree Hashes at
Merkle level ``8 * L``: nodes ``(8L, 256N + i)``. Its path is
``tile/<L>/<N>[.p/<W>]`` with ``N`` in 3-digit groups, all but the last
prefixed by ``x`` (``1234067`` is ``x001/x234/067``). Entry bundles live at
``tile/entries/<N>[.p/<W>]`` and are big-endian uint16 length-prefixed entries.

Every parse here is strict and raises :class:`MalformedTile` (code ``"malformed"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .merkle import HASH_SIZE, MerkleNode, node_hash
from .note import MalformedNote

__all__ = [
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "MAX_ENTRY_SIZE",
    "MalformedTile",
    "TileId",
    "BundleId",
    "parse_tile_path",
    "format_index",
    "tiles_for_size",
    "bundles_for_size",
    "tile_at_size",
    "bundle_at_size",
    "encode_bundle",
    "decode_bundle",
    "decode_tile",
    "tile_node_hash",
]

TILE_HEIGHT = 8
TILE_WIDTH = 256
MAX_ENTRY_SIZE = 0xFFFF
_MAX_LEVEL = 63


class MalformedTile(MalformedNote):
    """A tile path, tile body or entry bundle does not follow tlog-tiles."""

    code = "malformed"


def format_index(n: int) -> str:
    """``N`` as zero-padded 3-digit path elements, all but the last prefixed by ``x``."""
    if n < 0:
        raise MalformedTile("negative tile index")
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def _width_suffix(width: int) -> str:
    return "" if width == TILE_WIDTH else f".p/{width}"


@dataclass(frozen=True)
class TileId:
    """Hash tile ``(level, index)`` of ``width`` hashes (256 when full)."""

    level: int
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if not (0 <= self.level <= _MAX_LEVEL and self.index >= 0 and 1 <= self.width <= TILE_WIDTH):
            raise MalformedTile("tile coordinates out of range")

    @property
    def is_partial(self) -> bool:
        return self.width < TILE_WIDTH

    def path(self) -> str:
        return f"tile/{self.level}/{format_index(self.index)}{_width_suffix(self.width)}"

    def nodes(self) -> list[MerkleNode]:
        """The Merkle nodes whose hashes make up this tile, in order."""
        base = self.index * TILE_WIDTH
        return [MerkleNode(self.level * TILE_HEIGHT, base + i) for i in range(self.width)]


@dataclass(frozen=True)
class BundleId:
    """Entry bundle ``index`` of ``width`` entries: leaves ``256 * index ..``."""

    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if not (self.index >= 0 and 1 <= self.width <= TILE_WIDTH):
            raise MalformedTile("bundle coordinates out of range")

    @property
    def start(self) -> int:
        return self.index * TILE_WIDTH

    def path(self) -> str:
        return f"tile/entries/{format_index(self.index)}{_width_suffix(self.width)}"


def _parse_small(s: str, lo: int, hi: int) -> int:
    if not s or not s.isascii() or not s.isdigit() or (s[0] == "0" and s != "0"):
        raise MalformedTile("not a canonical decimal")
    v = int(s)
    if not lo <= v <= hi:
        raise MalformedTile("value out of range")
    return v


def _parse_index(parts: list[str]) -> int:
    if not parts or len(parts) > 7:
        raise MalformedTile("bad tile index")
    n = 0
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        digits = p if last else p[1:]
        if (not last and not p.startswith("x")) or len(digits) != 3 or not digits.isascii() or not digits.isdigit():
            raise MalformedTile("bad tile index element")
        n = n * 1000 + int(digits)
    if len(parts) > 1 and parts[0] == "x000":
        raise MalformedTile("tile index with a leading zero group")
    return n


def parse_tile_path(path: str) -> TileId | BundleId:
    """Parse ``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]`` (no prefix, no leading slash)."""
    if len(path) > 100:
        raise MalformedTile("tile path too long")
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise MalformedTile("not a tile path")
    width = TILE_WIDTH
    if len(parts) >= 4 and parts[-2].endswith(".p"):
        width = _parse_small(parts[-1], 1, TILE_WIDTH - 1)
        parts = parts[:-1]
        parts[-1] = parts[-1][:-2]
    index = _parse_index(parts[2:])
    if parts[1] == "entries":
        return BundleId(index, width)
    return TileId(_parse_small(parts[1], 0, _MAX_LEVEL), index, width)


def tile_at_size(level: int, index: int, size: int) -> TileId | None:
    """The tile ``(level, index)`` as served for a tree of ``size`` leaves, or None if empty."""
    count = size // (TILE_WIDTH**level)  # hashes at this tile level
    width = min(TILE_WIDTH, count - index * TILE_WIDTH)
    return TileId(level, index, width) if width > 0 else None


def bundle_at_size(index: int, size: int) -> BundleId | None:
    width = min(TILE_WIDTH, size - index * TILE_WIDTH)
    return BundleId(index, width) if width > 0 else None


def tiles_for_size(size: int) -> list[TileId]:
    """Every hash tile (full and partial) of a tree of ``size`` leaves, level by level."""
    out: list[TileId] = []
    level = 0
    while size // (TILE_WIDTH**level) > 0:
        count = size // (TILE_WIDTH**level)
        for index in range((count + TILE_WIDTH - 1) // TILE_WIDTH):
            t = tile_at_size(level, index, size)
            assert t is not None
            out.append(t)
        level += 1
    return out


def bundles_for_size(size: int) -> list[BundleId]:
    return [b for i in range((size + TILE_WIDTH - 1) // TILE_WIDTH) if (b := bundle_at_size(i, size))]


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """Concatenate entries, each with a big-endian uint16 length."""
    out = bytearray()
    for e in entries:
        if len(e) > MAX_ENTRY_SIZE:
            raise MalformedTile("entry larger than 65535 bytes")
        out += len(e).to_bytes(2, "big") + e
    return bytes(out)


def decode_bundle(data: bytes, width: int) -> list[bytes]:
    """Exactly ``width`` entries, no trailing bytes; :class:`MalformedTile` otherwise."""
    entries: list[bytes] = []
    pos = 0
    while pos < len(data):
        if len(entries) == width:
            raise MalformedTile(f"entry bundle holds more than {width} entries")
        if pos + 2 > len(data):
            raise MalformedTile("truncated entry length")
        n = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        if pos + n > len(data):
            raise MalformedTile("truncated entry")
        entries.append(bytes(data[pos : pos + n]))
        pos += n
    if len(entries) != width:
        raise MalformedTile(f"entry bundle holds {len(entries)} entries, expected {width}")
    return entries


def decode_tile(data: bytes, tile: TileId) -> list[bytes]:
    """Split a tile body into its hashes; its length must be exactly ``32 * width``."""
    if len(data) != HASH_SIZE * tile.width:
        raise MalformedTile(f"tile {tile.path()} is {len(data)} bytes, expected {HASH_SIZE * tile.width}")
    return [bytes(data[i : i + HASH_SIZE]) for i in range(0, len(data), HASH_SIZE)]


def tile_node_hash(tile: TileId, hashes: Sequence[bytes], node: MerkleNode) -> bytes:
    """The hash of ``node``, which must lie inside ``tile`` at or above its level.

    Nodes between tile levels are recomputed from the tile's hashes.
    """
    base_level = tile.level * TILE_HEIGHT
    rel = node.level - base_level
    if not 0 <= rel < TILE_HEIGHT:
        raise MalformedTile("node is not within this tile's levels")
    lo = (node.index << rel) - tile.index * TILE_WIDTH
    hi = lo + (1 << rel)
    if lo < 0 or hi > tile.width:
        raise MalformedTile("node is not covered by this tile")
    layer = list(hashes[lo:hi])
    while len(layer) > 1:
        layer = [node_hash(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
    return layer[0]
