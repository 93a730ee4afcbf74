"""Where a server's federation API lives: the static peer table, else its well-known document.

:meth:`Discovery.base_url` answers, in order:

1. the ``[federation.peers]`` table of the config (tests, private networks);
2. a cached answer younger than ``ttl`` seconds;
3. ``GET https://NAME/.well-known/confide/server``: a JSON object
   ``{"base_url": "https://host[:port]"}`` (section 1.2 of ``spec/server-server.md``);
   a 404 means ``https://NAME``. Answers are cached for ``ttl``; failures are not
   cached (the outbound queue's backoff paces retries).

Raises :class:`~protocol.federation.PeerUnreachable` when the document cannot be
fetched or is not the schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import aiohttp

from protocol.errors import MalformedBody
from protocol.federation import WELL_KNOWN_PATH, PeerUnreachable, WellKnown

__all__ = ["Discovery", "MAX_WELL_KNOWN"]

MAX_WELL_KNOWN = 4096


class Discovery:
    def __init__(self, session: aiohttp.ClientSession, static: Mapping[str, str], ttl: float,
                 clock: Callable[[], float], timeout: float = 10.0) -> None:
        self._session = session
        self._static = dict(static)
        self._ttl = ttl
        self._clock = clock
        self._timeout = timeout
        self._cache: dict[str, tuple[str, float]] = {}

    async def base_url(self, server: str) -> str:
        if server in self._static:
            return self._static[server]
        hit = self._cache.get(server)
        if hit is not None and self._clock() < hit[1]:
            return hit[0]
        url = await self._fetch(server)
        self._cache[server] = (url, self._clock() + self._ttl)
        return url

    async def _fetch(self, server: str) -> str:
        try:
            async with self._session.get(f"https://{server}{WELL_KNOWN_PATH}", allow_redirects=False,
                                         timeout=aiohttp.ClientTimeout(total=self._timeout)) as resp:
                if resp.status == 404:
                    return f"https://{server}"
                if resp.status != 200:
                    raise PeerUnreachable(f"well-known of {server}: HTTP {resp.status}")
                raw = await resp.content.read(MAX_WELL_KNOWN + 1)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise PeerUnreachable(f"well-known of {server}: {type(exc).__name__}") from None
        if len(raw) > MAX_WELL_KNOWN:
            raise PeerUnreachable(f"well-known of {server} is too large")
        try:
            return WellKnown.from_wire(json.loads(raw.decode("utf-8")), "well_known").base_url
        except (ValueError, UnicodeDecodeError, RecursionError, MalformedBody) as exc:
            raise PeerUnreachable(f"well-known of {server} is malformed: {exc}") from None
