"""Peers' published keys, fetched on demand and cached, honouring each key's validity.

:meth:`PeerKeys.public_key` answers which public key verifies a signature by
``server``'s ``key_id`` made at ``t_ms``:

- a cached document younger than ``ttl`` seconds is used as is;
- an unknown key id or a stale document triggers a fresh fetch (rotation),
  at most once per ``refetch_interval`` seconds per server (concurrent
  requests share one fetch);
- :meth:`~protocol.federation.ServerKeys.key_at` then raises
  :class:`~protocol.federation.UnknownKey` or :class:`~protocol.federation.KeyExpired`.

A failed fetch (unreachable, invalid document) is reported as
:class:`~protocol.federation.UnknownKey` naming the cause; a cached document is
still used for keys it lists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from protocol.federation import PeerUnreachable, ServerKeys, ServerKeysInvalid, UnknownKey

__all__ = ["PeerKeys"]


class PeerKeys:
    def __init__(self, fetch: Callable[[str], Awaitable[ServerKeys]], clock: Callable[[], float],
                 ttl: float, refetch_interval: float) -> None:
        self._fetch = fetch
        self._clock = clock
        self._ttl = ttl
        self._refetch = refetch_interval
        self._docs: dict[str, tuple[ServerKeys, float]] = {}
        self._last_try: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def cached(self, server: str) -> ServerKeys | None:
        hit = self._docs.get(server)
        return None if hit is None else hit[0]

    async def public_key(self, server: str, key_id: str, t_ms: int) -> bytes:
        """Raises :class:`UnknownKey` or :class:`KeyExpired`."""
        hit = self._docs.get(server)
        now = self._clock()
        fresh = hit is not None and now - hit[1] < self._ttl
        if not fresh or key_id not in hit[0].keys:
            await self._refresh(server)
        hit = self._docs.get(server)
        if hit is None:
            raise UnknownKey(f"the keys of {server} could not be fetched")
        return hit[0].key_at(key_id, t_ms)

    def cached_key(self, server: str, key_id: str, t_ms: int) -> bytes:
        """Like :meth:`public_key` from the cached document only, never fetching (for code
        that holds a database transaction). Raises :class:`UnknownKey` (also when nothing
        is cached) or :class:`KeyExpired`."""
        hit = self._docs.get(server)
        if hit is None:
            raise UnknownKey(f"no key document of {server} is cached")
        return hit[0].key_at(key_id, t_ms)

    async def document(self, server: str) -> ServerKeys:
        """``server``'s key document (cached while younger than ``ttl``, else fetched).

        Raises :class:`UnknownKey` when it cannot be fetched and nothing is cached."""
        hit = self._docs.get(server)
        if hit is None or self._clock() - hit[1] >= self._ttl:
            await self._refresh(server)
            hit = self._docs.get(server)
        if hit is None:
            raise UnknownKey(f"the keys of {server} could not be fetched")
        return hit[0]

    async def _refresh(self, server: str) -> None:
        lock = self._locks.setdefault(server, asyncio.Lock())
        async with lock:
            last = self._last_try.get(server)
            now = self._clock()
            if last is not None and now - last < self._refetch:
                return
            self._last_try[server] = now
            try:
                doc = await self._fetch(server)
            except (PeerUnreachable, ServerKeysInvalid):
                return
            self._docs[server] = (doc, self._clock())
