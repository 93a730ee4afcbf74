"""The replay cache: (origin, signature) pairs seen within the clock-skew window, in memory.

A signed request is accepted at most once: the verifier records its
``(origin, signature)`` until ``timestamp + max_skew +`` :data:`REPLAY_MARGIN_MS`;
the clock-skew check refuses it from ``timestamp + max_skew`` on (strictly), so
the entry outlives the window in which the request could be accepted. The cache is
bounded: when it holds ``capacity`` unexpired entries, new requests are
refused (:class:`~protocol.federation.ReplayCacheFull`) rather than letting an
old entry go early. It lives in memory: after a restart a request captured in
the last ``max_skew`` seconds could be replayed once; transactions stay
idempotent across restarts through ``federation_inbound_txns``
(``spec/server-server.md`` section 3.4).
"""

from __future__ import annotations

import heapq

from protocol.federation import ReplayCacheFull, Replayed

__all__ = ["ReplayCache", "REPLAY_MARGIN_MS"]

#: How long an entry outlives the skew window (covers a small backward step of the clock).
REPLAY_MARGIN_MS = 5000


class ReplayCache:
    def __init__(self, capacity: int, window_ms: int) -> None:
        self.capacity = capacity
        self.window_ms = window_ms
        self._expiry: dict[tuple[str, bytes], int] = {}
        self._heap: list[tuple[int, str, bytes]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def _purge(self, now_ms: int) -> None:
        while self._heap and self._heap[0][0] <= now_ms:
            expiry, origin, sig = heapq.heappop(self._heap)
            if self._expiry.get((origin, sig)) == expiry:
                del self._expiry[(origin, sig)]

    def check(self, origin: str, signature: bytes, timestamp_ms: int, now_ms: int) -> None:
        """Raises :class:`Replayed` for a pair already seen, :class:`ReplayCacheFull` when full."""
        self._purge(now_ms)
        if (origin, signature) in self._expiry:
            raise Replayed("this request was already received")
        if len(self._expiry) >= self.capacity:
            raise ReplayCacheFull("too many recent federation requests; retry later")

    def add(self, origin: str, signature: bytes, timestamp_ms: int) -> None:
        expiry = timestamp_ms + self.window_ms + REPLAY_MARGIN_MS
        self._expiry[(origin, signature)] = expiry
        heapq.heappush(self._heap, (expiry, origin, signature))
