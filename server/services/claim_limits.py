"""Who may claim whose KeyPackages how fast (finding 8, ``spec/security.md``).

In memory (one server process), bounded (each table keeps at most ``max_keys``
keys, the stalest dropped first), on the injected clock. A claim passes three
checks, made and counted in one synchronous step (no ``await`` between check and
count, so concurrent claims cannot all pass one check):

- the claimer's token bucket: ``burst`` claims at once, refilled at
  ``per_hour`` an hour (every claim counts: a local user, or a peer server for
  claims arriving over federation, including claims through a room's hub);
- the pair (claimer, target): at most ``per_pair`` claims in ``window`` seconds
  (not for a user claiming their own devices' packages, nor for a peer server);
- the target, for claimers who share no room with it (*strangers*, the rule of
  :meth:`~server.services.devices.Devices.check_contact`): at most ``per_target``
  such claims in ``window`` seconds, so strangers together cannot drain a target.

A refused claim is not counted and claims nothing; it raises
:class:`~protocol.errors.RateLimited` with ``retry_after_ms``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

from protocol.errors import RateLimited

from .ratelimit import FailureWindow

__all__ = ["TokenBucket", "ClaimLimiter"]


class TokenBucket:
    """Per key: ``capacity`` tokens, refilled at ``rate`` tokens a second."""

    def __init__(self, capacity: int, rate: float, clock: Callable[[], float],
                 max_keys: int = 100_000) -> None:
        self.capacity = capacity
        self.rate = rate
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(self.capacity), now))
        return min(float(self.capacity), tokens + max(0.0, now - at) * self.rate)

    def retry_after(self, key: str, cost: float = 1.0) -> float:
        """Seconds until ``key`` has ``cost`` tokens (0 when it has them now)."""
        tokens = self._tokens(key, self._clock())
        return 0.0 if tokens >= cost else (cost - tokens) / self.rate

    def take(self, key: str, cost: float = 1.0) -> None:
        now = self._clock()
        self._buckets[key] = (self._tokens(key, now) - cost, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)


class ClaimLimiter:
    """The three checks of the module docstring."""

    def __init__(self, per_claimer: TokenBucket, per_pair: FailureWindow,
                 per_target: FailureWindow) -> None:
        self.per_claimer = per_claimer
        self.per_pair = per_pair
        self.per_target = per_target

    def begin(self, claimer: str, target: str, *, stranger: bool, cost: float = 1.0) -> None:
        """Count one claim of ``target``'s KeyPackages by ``claimer`` (taking ``cost``
        tokens of its bucket) or raise :class:`RateLimited` without counting it. A peer
        server (``cost`` < 1) claims for many users: its pair window is not checked."""
        pair = f"{claimer}\x00{target}"
        paired = cost >= 1 and claimer != target
        wait = self.per_claimer.retry_after(claimer, cost)
        if paired:
            wait = max(wait, self.per_pair.retry_after(pair))
        if stranger:
            wait = max(wait, self.per_target.retry_after(target))
        if wait > 0:
            raise RateLimited("too many KeyPackage claims; try again later", math.ceil(wait * 1000))
        self.per_claimer.take(claimer, cost)
        if paired:
            self.per_pair.record(pair)
        if stranger:
            self.per_target.record(target)
