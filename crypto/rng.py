"""Injectable randomness.

Every function of the core that needs random bytes takes an ``rng`` argument:
a callable ``rng(n) -> bytes``. Production code passes :func:`system_rng`;
tests and vectors pass a deterministic source such as :class:`FixedRng`.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

__all__ = ["Rng", "system_rng", "FixedRng", "SeededRng"]

Rng = Callable[[int], bytes]


def system_rng(n: int) -> bytes:
    """Operating-system randomness (``secrets.token_bytes``)."""
    return secrets.token_bytes(n)


class FixedRng:
    """Returns the given byte strings in order; each call must ask for exactly its length."""

    def __init__(self, *chunks: bytes) -> None:
        self._chunks = list(chunks)

    def __call__(self, n: int) -> bytes:
        if not self._chunks:
            raise AssertionError("FixedRng exhausted")
        chunk = self._chunks.pop(0)
        if len(chunk) != n:
            raise AssertionError(f"FixedRng: asked for {n} bytes, next chunk has {len(chunk)}")
        return chunk


class SeededRng:
    """A deterministic stream (SHA-256 in counter mode) for reproducible tests."""

    def __init__(self, seed: bytes | str | int) -> None:
        self._seed = str(seed).encode() if not isinstance(seed, bytes) else seed
        self._counter = 0

    def __call__(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            self._counter += 1
            out += hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
        return out[:n]
