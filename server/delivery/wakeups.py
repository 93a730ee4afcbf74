"""Waking a device's waiting syncs when something arrives for it, without polling.

A waiter calls :meth:`Wakeups.watch` *before* it reads the database, then, if it
found nothing, awaits :meth:`Wakeups.wait` on what ``watch`` returned. A writer
calls :meth:`Wakeups.notify` *after* its transaction committed. ``watch``
hands out the device's current :class:`asyncio.Event` (a one-shot condition);
``notify`` sets it and forgets it, so the next ``watch`` gets a fresh one.
Anything committed after a waiter's ``watch`` therefore wakes it: no lost
wakeups, and no timers. :meth:`close` wakes every waiter for shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

__all__ = ["Wakeups", "device_key"]


def device_key(user_id: str, device_id: str) -> str:
    return f"{user_id}/{device_id}"


class Wakeups:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._closed = asyncio.Event()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def watch(self, key: str) -> asyncio.Event:
        """The event the next :meth:`notify` of ``key`` sets."""
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = asyncio.Event()
        return event

    def watched(self, key: str) -> bool:
        """Whether a waiter watches ``key`` (the next :meth:`notify` of it wakes someone)."""
        return key in self._events

    def notify(self, keys: Iterable[str]) -> None:
        for key in keys:
            event = self._events.pop(key, None)
            if event is not None:
                event.set()

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait until ``event`` is set, :meth:`close` is called or ``timeout`` seconds passed;
        True when woken by a notify."""
        if event.is_set():
            return True
        if self._closed.is_set() or timeout <= 0:
            return False
        closed = asyncio.ensure_future(self._closed.wait())
        woken = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({closed, woken}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (closed, woken):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return event.is_set()

    def close(self) -> None:
        """Wake every waiter (shutdown); later waits return at once."""
        self._closed.set()
        self.notify(list(self._events))
