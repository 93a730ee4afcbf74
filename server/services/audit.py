"""How the homeserver's services write to its transparency log.

Two paths, both ending in :meth:`server.translog.TransparencyLog.append`:

- :meth:`AuditTrail.record` queues an entry in ``audit_outbox`` inside the
  caller's write transaction, so the entry exists exactly when the change it
  records does; :meth:`AuditTrail.flush` (called before answering) appends
  queued entries and deletes them. A crash in between leaves them queued, and
  the next flush (at start, periodically, or by the next request) appends
  them: never lost. Room events are appended exactly once: the first pass of
  a process (and the pass after a failed outbox delete) skips queued room
  events whose event hash the log already has (appended before a crash that
  came before their delete); other entries are at least once. Used for access and removal events, and
  by the offline ``confide admin`` commands.
- :meth:`AuditTrail.append_now` appends at once and returns the index: for a
  device registration, which must be in the log before the key is usable.

Room and delivery services use the same two calls.
"""

from __future__ import annotations

import asyncio

import aiosqlite

from protocol.audit import AuditEntry, RoomEvent, decode_entry, encode_entry
from server.storage import Database, outbox
from server.translog import TransparencyLog

__all__ = ["AuditTrail", "PASS_LIMIT"]

#: Outbox entries read per round of a flush pass.
PASS_LIMIT = 256


class AuditTrail:
    def __init__(self, db: Database, log: TransparencyLog) -> None:
        self.db = db
        self.log = log
        self._lock = asyncio.Lock()
        self._requested = 0  # flush calls so far
        self._covered = 0  # every call up to this one has had a full pass start after it
        #: The outbox may hold entries the log already has (a crash, or a failed delete).
        self._recovering = True

    @staticmethod
    async def record(tx: aiosqlite.Connection, entry: AuditEntry) -> None:
        """Queue ``entry`` in the caller's transaction (raises the entry's typed errors if invalid)."""
        await outbox.push(tx, encode_entry(entry))

    @staticmethod
    async def record_many(tx: aiosqlite.Connection, entries: list[AuditEntry]) -> None:
        """:meth:`record` for several entries, in order, in one statement."""
        await outbox.push_many(tx, [encode_entry(e) for e in entries])

    async def append_now(self, entry: AuditEntry) -> int:
        """Append and return the log index once the entry is under a signed checkpoint."""
        return await self.log.append(entry)

    async def flush(self) -> int:
        """Append every entry queued before the call, oldest first; returns how many this call
        appended.

        Concurrent calls share passes (group commit): a pass that *started* after a call was
        made reads everything committed before that call, so the call returns when such a
        pass has finished, without a pass of its own.
        """
        self._requested += 1
        ticket = self._requested
        done = 0
        async with self._lock:
            if self._covered >= ticket:
                return 0
            start = self._requested
            while True:
                async with self.db.statement() as conn:
                    rows = await outbox.peek(conn, PASS_LIMIT)
                if rows:
                    entries = [entry for _, entry in rows]
                    if self._recovering:
                        entries = await self._not_yet_logged(entries)
                    if entries:
                        await self.log.append_many(entries)
                    try:
                        async with self.db.statement() as conn:  # one statement, its own commit
                            await outbox.remove(conn, [i for i, _ in rows])
                    except BaseException:
                        self._recovering = True
                        raise
                    done += len(entries)
                if len(rows) < PASS_LIMIT:
                    break
            self._covered = start
            self._recovering = False
        return done

    async def _not_yet_logged(self, entries: list[bytes]) -> list[bytes]:
        """``entries`` without the room events whose event hash the log already has."""
        kept = []
        for data in entries:
            entry = decode_entry(data)
            if isinstance(entry, RoomEvent) and \
                    await self.log.storage.event_index(entry.event_hash) is not None:
                continue
            kept.append(data)
        return kept
