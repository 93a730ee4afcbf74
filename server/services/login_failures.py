"""Failed logins, counted per window instead of logged one by one.

A failed login (wrong password, unknown user) adds one to the count of the
current window in ``failed_login_windows``, inside the request's transaction:
nothing names the attempted user. :meth:`FailedLoginCounter.log_closed_windows`
(a background pass, :func:`server.background.run_forever`) turns each window that
has ended into one ``failed_logins`` log entry (its start, end and count) and deletes
the row, in one transaction through the audit outbox: a window is logged once.
Time comes from the injected clock.
"""

from __future__ import annotations

import aiosqlite

from protocol.audit import FailedLogins
from server.storage import Database, log_privacy

from .audit import AuditTrail
from .clock import Clock, now_ms

__all__ = ["FailedLoginCounter"]


class FailedLoginCounter:
    def __init__(self, db: Database, audit: AuditTrail, window_s: int, clock: Clock) -> None:
        self.db = db
        self.audit = audit
        self.window_ms = window_s * 1000
        self.clock = clock

    def _start(self, ms: int) -> int:
        return ms // self.window_ms * self.window_ms

    async def count(self, tx: aiosqlite.Connection) -> None:
        """One failed login now, in the caller's transaction."""
        await log_privacy.count_failure(tx, self._start(now_ms(self.clock)))

    async def log_closed_windows(self) -> int:
        """Log every ended window as one ``failed_logins`` entry; returns how many."""
        current = self._start(now_ms(self.clock))
        async with self.db.read() as conn:
            closed = await log_privacy.closed_windows(conn, current)
        if not closed:
            return 0
        async with self.db.transaction() as tx:
            for start, count in closed:
                await self.audit.record(tx, FailedLogins(start + self.window_ms, start, count))
                await log_privacy.delete_window(tx, start)
        await self.audit.flush()
        return len(closed)
