"""Followed rooms whose hub history does not apply here (migration 5, ``federation_stuck_rooms``).

A follower refuses a hub's event that breaks its chain or whose handshake does not
apply to its own public view of the group (``spec/server-server.md`` 11.1, 11.4). It
then cannot store any later event of that room. Each such room gets one row: the seq
and event id it stopped at, the refusal's code and message, when it first happened,
the last attempt and how many attempts failed. Catch-up retries it at every pass and
deletes the row when the room moves on. ``confide admin federation`` lists the rows.

Functions over a connection of :meth:`server.storage.Database.transaction` or ``read``.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

__all__ = ["StuckRoom", "record", "clear", "list_stuck"]


@dataclass(frozen=True)
class StuckRoom:
    room_id: str
    seq: int
    event_id: bytes | None
    code: str
    reason: str
    since: int
    last_attempt: int
    attempts: int


async def record(tx: aiosqlite.Connection, room_id: str, seq: int, event_id: bytes | None, code: str,
                 reason: str, now_ms: int) -> None:
    """Insert the room's row, or count one more failed attempt (seq, code and reason updated)."""
    await tx.execute(
        "INSERT INTO federation_stuck_rooms (room_id, seq, event_id, code, reason, since, last_attempt, "
        "attempts) VALUES (?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT (room_id) DO UPDATE SET seq = excluded.seq, "
        "event_id = excluded.event_id, code = excluded.code, reason = excluded.reason, "
        "last_attempt = excluded.last_attempt, attempts = attempts + 1",
        (room_id, seq, event_id, code, reason[:500], now_ms, now_ms))


async def clear(tx: aiosqlite.Connection, room_id: str) -> bool:
    """Delete the room's row; whether there was one."""
    cur = await tx.execute("DELETE FROM federation_stuck_rooms WHERE room_id = ?", (room_id,))
    return cur.rowcount > 0


async def list_stuck(conn: aiosqlite.Connection) -> list[StuckRoom]:
    rows = await conn.execute_fetchall(
        "SELECT room_id, seq, event_id, code, reason, since, last_attempt, attempts "
        "FROM federation_stuck_rooms ORDER BY since, room_id")
    return [StuckRoom(r[0], r[1], None if r[2] is None else bytes(r[2]), r[3], r[4], r[5], r[6], r[7])
            for r in rows]
