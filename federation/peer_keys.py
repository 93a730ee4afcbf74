"""Peers' published keys, fetched on demand and cached, honouring each key's validity.

:meth:`PeerKeys.public_key` answers which public key verifies a signature by
``server``'s ``key_id`` made at ``t_ms``:

- a cached document younger than ``ttl`` seconds is used as is;
- an unknown key id or a stale document triggers a fresh fetch (rotation),
  at most once per ``refetch_interval`` seconds per server (concurrent
  requests share one fetch);
- :meth:`~protocol.federation.ServerKeys.key_at` then raises
  :class:`~protocol.federation.UnknownKey` or :class:`~protocol.federation.KeyExpired`.

A failed fetch (unreachable, invalid document, or a server the policy does not
name) is reported as :class:`~protocol.federation.UnknownKey`; a cached document is
still used for keys it lists. The failure is cached too (negative caching): the
server is not asked again within ``refetch_interval``.

Per-server state (document, time of the last try, the lock that makes concurrent
requests share one fetch) lives in one bounded LRU map of at most ``capacity``
servers: a flood of distinct names cannot grow it (``spec/security.md``, finding 6).
An entry whose fetch is running is never evicted.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from protocol.federation import (
    PeerDenied,
    PeerUnreachable,
    ServerKeys,
    ServerKeysInvalid,
    UnknownKey,
)

__all__ = ["PeerKeys", "KEY_CACHE_CAPACITY"]

#: Default number of servers whose key state is kept.
KEY_CACHE_CAPACITY = 1024


@dataclass
class _Entry:
    doc: tuple[ServerKeys, float] | None = None
    last_try: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class PeerKeys:
    def __init__(self, fetch: Callable[[str], Awaitable[ServerKeys]], clock: Callable[[], float],
                 ttl: float, refetch_interval: float, capacity: int = KEY_CACHE_CAPACITY) -> None:
        self._fetch = fetch
        self._clock = clock
        self._ttl = ttl
        self._refetch = refetch_interval
        self.capacity = capacity
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        """How many servers' state is kept (at most ``capacity`` plus running fetches)."""
        return len(self._entries)

    def _doc(self, server: str) -> tuple[ServerKeys, float] | None:
        entry = self._entries.get(server)
        if entry is None:
            return None
        self._entries.move_to_end(server)
        return entry.doc

    def _entry(self, server: str) -> _Entry:
        entry = self._entries.get(server)
        if entry is None:
            entry = self._entries[server] = _Entry()
            for name in list(self._entries):
                if len(self._entries) <= self.capacity:
                    break
                if name != server and not self._entries[name].lock.locked():
                    del self._entries[name]
        self._entries.move_to_end(server)
        return entry

    def cached(self, server: str) -> ServerKeys | None:
        hit = self._doc(server)
        return None if hit is None else hit[0]

    async def public_key(self, server: str, key_id: str, t_ms: int) -> bytes:
        """Raises :class:`UnknownKey` or :class:`KeyExpired`."""
        hit = self._doc(server)
        now = self._clock()
        fresh = hit is not None and now - hit[1] < self._ttl
        if not fresh or key_id not in hit[0].keys:
            await self._refresh(server)
        hit = self._doc(server)
        if hit is None:
            raise UnknownKey(f"the keys of {server} could not be fetched")
        return hit[0].key_at(key_id, t_ms)

    def cached_key(self, server: str, key_id: str, t_ms: int) -> bytes:
        """Like :meth:`public_key` from the cached document only, never fetching (for code
        that holds a database transaction). Raises :class:`UnknownKey` (also when nothing
        is cached) or :class:`KeyExpired`."""
        hit = self._doc(server)
        if hit is None:
            raise UnknownKey(f"no key document of {server} is cached")
        return hit[0].key_at(key_id, t_ms)

    async def document(self, server: str) -> ServerKeys:
        """``server``'s key document (cached while younger than ``ttl``, else fetched).

        Raises :class:`UnknownKey` when it cannot be fetched and nothing is cached."""
        hit = self._doc(server)
        if hit is None or self._clock() - hit[1] >= self._ttl:
            await self._refresh(server)
            hit = self._doc(server)
        if hit is None:
            raise UnknownKey(f"the keys of {server} could not be fetched")
        return hit[0]

    async def _refresh(self, server: str) -> None:
        entry = self._entry(server)
        async with entry.lock:
            now = self._clock()
            if entry.last_try is not None and now - entry.last_try < self._refetch:
                return
            entry.last_try = now
            try:
                doc = await self._fetch(server)
            except (PeerDenied, PeerUnreachable, ServerKeysInvalid):
                return
            entry.doc = (doc, self._clock())
