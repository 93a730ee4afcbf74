"""A sliding-window counter of failed logins, per user and per remote address.

In memory (one server process): a restart forgets the counts, which only
helps someone who can restart the server. Each key keeps the times of its
failures within the window; the table holds at most ``max_keys`` keys (the
stalest are dropped first), so a flood of distinct names cannot grow it.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable

from protocol.errors import RateLimited

__all__ = ["FailureWindow", "LoginLimiter"]


class FailureWindow:
    """Failures per key within ``window`` seconds; more than ``limit`` means wait."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float], max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again (0 when it may now)."""
        now = self._clock()
        times = self._recent(key, now)
        if times is None or len(times) < self.limit:
            return 0.0
        return times[-self.limit] + self.window - now

    def record(self, key: str) -> None:
        now = self._clock()
        times = self._recent(key, now) or deque()
        times.append(now)
        self._failures[key] = times
        self._failures.move_to_end(key)
        while len(times) > self.limit:
            times.popleft()
        while len(self._failures) > self._max_keys:
            self._failures.popitem(last=False)

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)


class LoginLimiter:
    """The two windows a login checks: the account tried and the address it came from."""

    def __init__(self, per_user: FailureWindow, per_address: FailureWindow) -> None:
        self.per_user = per_user
        self.per_address = per_address

    def check(self, user: str, address: str) -> None:
        """Raises :class:`~protocol.errors.RateLimited` (with ``retry_after_ms``) when either is over."""
        wait = max(self.per_user.retry_after(user), self.per_address.retry_after(address))
        if wait > 0:
            raise RateLimited("too many failed logins; try again later", math.ceil(wait * 1000))

    def failed(self, user: str, address: str) -> None:
        self.per_user.record(user)
        self.per_address.record(address)

    def succeeded(self, user: str) -> None:
        self.per_user.clear(user)
