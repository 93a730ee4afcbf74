"""The injected clock: ``clock()`` is POSIX seconds as a float (``time.time`` in production)."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Clock", "now_ms", "now_s"]

Clock = Callable[[], float]


def now_ms(clock: Clock) -> int:
    """Milliseconds since the Unix epoch (the unit of stored times and log entries)."""
    return int(clock() * 1000)


def now_s(clock: Clock) -> int:
    """Whole seconds (the unit of MLS lifetimes)."""
    return int(clock())
