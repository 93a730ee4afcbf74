"""Verification of inbound signed requests (``spec/server-server.md`` section 3.3).

:meth:`RequestVerifier.verify` checks, in this order, each failure with its code:

1. an ``Authorization: Confide-Signature`` header (``unsigned``) of exact
   grammar (``malformed_authorization``);
2. ``destination`` is this server (``wrong_destination``);
3. the origin is allowed (``peer_denied``);
4. ``|now - ts| < max_skew``, strictly (``clock_skew``);
5. the origin publishes the key (``unknown_key``), valid at ``ts`` (``key_expired``);
6. the signature over the request as received (``bad_signature``);
7. ``(origin, signature)`` not seen before (``replayed``; ``replay_cache_full``).

Only then is the signature recorded in the replay cache, until ``ts + max_skew +``
:data:`~federation.replay.REPLAY_MARGIN_MS`. The clock is read once, before any
await: the skew check and the replay cache use that one ``now``, so a request is
accepted only while its replay entry is certainly kept (the windows overlap
strictly, ``spec/security.md`` finding 14). Nothing else is written by a refused request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from protocol.federation import Authorization, ClockSkew, WrongDestination, verify_request

from .peer_keys import PeerKeys
from .policy import PeerPolicy
from .replay import ReplayCache

__all__ = ["RequestVerifier", "VerifiedRequest"]


@dataclass(frozen=True)
class VerifiedRequest:
    """A request whose signature checked: ``origin`` sent exactly ``body``."""

    origin: str
    key_id: str
    timestamp_ms: int
    body: bytes


class RequestVerifier:
    def __init__(self, server_name: str, policy: PeerPolicy, peer_keys: PeerKeys, replay: ReplayCache,
                 clock: Callable[[], float], max_skew_s: int,
                 on_verified: Callable[[str], None] | None = None) -> None:
        self.server_name = server_name
        self._policy = policy
        self._keys = peer_keys
        self._replay = replay
        self._clock = clock
        self._skew_ms = max_skew_s * 1000
        self._on_verified = on_verified

    async def verify(self, method: str, target: str, authorization: str | None, body: bytes) -> VerifiedRequest:
        """Raises the :mod:`protocol.federation` error of the first failed check."""
        auth = Authorization.parse(authorization)
        if auth.destination != self.server_name:
            raise WrongDestination(f"this server is {self.server_name}")
        self._policy.check(auth.origin)
        now_ms = int(self._clock() * 1000)  # the one reading (see the module docstring)
        if abs(now_ms - auth.timestamp_ms) >= self._skew_ms:
            raise ClockSkew(f"timestamp {self._skew_ms // 1000} s or more from this server's clock")
        public_key = await self._keys.public_key(auth.origin, auth.key_id, auth.timestamp_ms)
        verify_request(auth, public_key, method, target, body)
        self._replay.check(auth.origin, auth.signature, auth.timestamp_ms, now_ms)
        self._replay.add(auth.origin, auth.signature, auth.timestamp_ms)
        if self._on_verified is not None:
            self._on_verified(auth.origin)
        return VerifiedRequest(auth.origin, auth.key_id, auth.timestamp_ms, body)
