"""Each device's share of the delivery work, so one device's flood cannot slow the others
(finding 10, ``spec/security.md``).

- One sync answer is built at a time per device (:meth:`DeviceShare.building`): a device
  that asks four syncs at once gets them one after another, waiting without work.
- Bytes a device pulls (sync answers) and pushes (``/sendToDevice`` bodies) are metered
  in per-device byte buckets on the injected clock (``burst`` bytes, refilled at ``rate``
  bytes a second; an answer counts at least ``MIN_PULL``, a request ``MIN_PUSH``). A sync
  over its budget waits until the bucket is back (at most
  :data:`MAX_PACE` seconds a round); a send over its budget is refused ``rate_limited``
  (``retry_after_ms``) before its body is read.
- Refusals of flood traffic (``rate_limited``, ``inbox_full``) are answered after
  :data:`TARPIT` seconds: a client that sends again as soon as it is answered then costs
  the server a few requests a second, not thousands.

In memory, bounded (``max_keys`` devices per table, the stalest dropped first).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable

from protocol.errors import RateLimited

__all__ = ["DeviceShare", "ByteMeter", "TARPIT", "MAX_PACE", "PULL_RATE", "PULL_BURST", "PUSH_RATE",
           "PUSH_BURST", "MIN_PULL", "MIN_PUSH"]

#: Seconds before a refusal of flood traffic is answered.
TARPIT = 0.25
#: Bytes every sync request (and each answer's payload) and every to-device request count at
#: least (so a loop of empty syncs is paced too: 64 a second once the burst is spent).
MIN_PULL, MIN_PUSH = 64 * 1024, 16 * 1024
#: Longest wait of one sync round for its byte budget, seconds.
MAX_PACE = 1.0
#: Bytes a second a device may pull (sync answers) by default, and its burst: 4 MiB/s, 16 MiB
#: (a device whose inbox is full, 64 MiB, catches up in about 12 s).
PULL_RATE, PULL_BURST = 4 * 1024 * 1024, 16 * 1024 * 1024
#: Bytes a second a device may push (to-device payloads) by default, and its burst: 1 MiB/s,
#: 4 MiB (an honest device sends keys and small payloads; attachments go elsewhere).
PUSH_RATE, PUSH_BURST = 1024 * 1024, 4 * 1024 * 1024


class ByteMeter:
    """Per key, a byte balance of at most ``burst``, refilled at ``rate`` a second; spending
    may take it below zero, and the key then waits for it to be back at zero."""

    def __init__(self, burst: int, rate: float, clock: Callable[[], float], max_keys: int = 100_000) -> None:
        self.burst, self.rate = burst, rate
        self._clock = clock
        self._max_keys = max_keys
        self._balance: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (bytes, at)

    def _now_balance(self, key: str, now: float) -> float:
        value, at = self._balance.get(key, (float(self.burst), now))
        return min(float(self.burst), value + max(0.0, now - at) * self.rate)

    def wait(self, key: str) -> float:
        """Seconds until ``key``'s balance is back at zero (0 when it is not below)."""
        balance = self._now_balance(key, self._clock())
        return 0.0 if balance >= 0 else -balance / self.rate

    def spend(self, key: str, amount: int) -> None:
        now = self._clock()
        self._balance[key] = (self._now_balance(key, now) - amount, now)
        self._balance.move_to_end(key)
        while len(self._balance) > self._max_keys:
            self._balance.popitem(last=False)


class DeviceShare:
    """The rules of the module docstring, for the sync and to-device routes."""

    def __init__(self, pulled: ByteMeter, pushed: ByteMeter, tarpit: float = TARPIT) -> None:
        self.pulled = pulled  # sync answers (PULL_RATE, PULL_BURST by default)
        self.pushed = pushed  # to-device payloads (PUSH_RATE, PUSH_BURST)
        self.tarpit = tarpit
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @contextlib.asynccontextmanager
    async def building(self, key: str) -> AsyncIterator[None]:
        """Hold ``key``'s one build slot, after its pull budget is back (or MAX_PACE)."""
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            wait = self.pulled.wait(key)
            if wait > 0:
                await asyncio.sleep(min(wait, MAX_PACE))
            yield

    async def admit_push(self, key: str) -> None:
        """Raise :class:`RateLimited` (after the tarpit) when ``key`` pushed past its budget."""
        wait = self.pushed.wait(key)
        if wait > 0:
            await asyncio.sleep(self.tarpit)
            raise RateLimited("this device sends too much; try again later", math.ceil(wait * 1000))

    async def refused(self) -> None:
        """Wait the tarpit before a flood refusal is answered."""
        await asyncio.sleep(self.tarpit)
