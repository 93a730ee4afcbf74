"""Login and registration attempts counted per user and per remote address, before any work.

In memory (one server process): a restart forgets the counts, which only
helps someone who can restart the server. Each key keeps the times of its
counted attempts within the window; the table holds at most ``max_keys`` keys
(the stalest are dropped first), so a flood of distinct names cannot grow it.

The rule (``spec/security.md``, finding 7):

- An attempt is counted *before* its password is checked (or its invite
  looked up): :meth:`LoginLimiter.begin` checks and records in one step with
  no ``await`` in between, so concurrent requests cannot all pass a check
  made before any of them was counted. Over the limit, the request is
  answered ``rate_limited`` and nothing else is done (no password check).
- A success takes its own attempt back (:meth:`LoginLimiter.succeeded`) and
  clears the account's window; failures stay counted until the window
  expires. Refused attempts are not counted, so a flood cannot extend a
  window: it ends ``window`` seconds after the ``limit``-th counted failure.
- An address from which the account logged in successfully in the last
  :data:`KNOWN_ADDRESS_TTL` seconds is *known* for that account: attempts from
  it are counted in a window of their own (user, address) instead of the
  account's window, so a flood from elsewhere cannot lock the owner out on
  an address they used before.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable

from protocol.errors import RateLimited

__all__ = ["FailureWindow", "LoginLimiter", "KNOWN_ADDRESS_TTL"]

#: Seconds a successful login keeps its address known for the account (30 days).
KNOWN_ADDRESS_TTL = 30 * 86400


class FailureWindow:
    """Attempts per key within ``window`` seconds; ``limit`` of them means wait."""

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

    def take_back(self, key: str) -> None:
        """Forget the newest counted attempt of ``key`` (the one that just succeeded)."""
        times = self._failures.get(key)
        if times:
            times.pop()
            if not times:
                del self._failures[key]

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)


class LoginLimiter:
    """The windows an attempt is counted in: the account tried and the address it came from."""

    def __init__(self, per_user: FailureWindow, per_address: FailureWindow,
                 clock: Callable[[], float] | None = None, max_known: int = 100_000) -> None:
        self.per_user = per_user
        self.per_address = per_address
        self._clock = clock or per_user._clock
        self._max_known = max_known
        self._known: OrderedDict[str, float] = OrderedDict()  # user/address -> last success

    def _user_key(self, user: str, address: str) -> str:
        """The account's window, or the (account, known address) one."""
        pair = f"{user}\x00{address}"
        seen = self._known.get(pair)
        if seen is not None and seen > self._clock() - KNOWN_ADDRESS_TTL:
            return pair
        return user

    def begin(self, user: str | None, address: str) -> None:
        """Count one attempt for ``user`` (None: registration, the address only) from
        ``address``, or raise :class:`~protocol.errors.RateLimited` (with
        ``retry_after_ms``) without counting it when a window is full. Synchronous:
        the check and the count are one step on the event loop."""
        key = None if user is None else self._user_key(user, address)
        wait = self.per_address.retry_after(address)
        if key is not None:
            wait = max(wait, self.per_user.retry_after(key))
        if wait > 0:
            raise RateLimited("too many failed attempts; try again later", math.ceil(wait * 1000))
        self.per_address.record(address)
        if key is not None:
            self.per_user.record(key)

    def succeeded(self, user: str | None, address: str) -> None:
        """The attempt :meth:`begin` counted succeeded: take it back, clear the account's
        window and remember ``address`` as known for the account."""
        self.per_address.take_back(address)
        if user is None:
            return
        self.per_user.clear(self._user_key(user, address))
        self.per_user.clear(user)
        pair = f"{user}\x00{address}"
        self._known[pair] = self._clock()
        self._known.move_to_end(pair)
        while len(self._known) > self._max_known:
            self._known.popitem(last=False)
