"""Device inboxes (``inbox``): Welcomes and device-to-device payloads, one row per item.

Each item has a position in the one delivery stream (shared with room events);
a sync token past the position acknowledges it and :func:`ack` deletes it. Rows
of a removed device go with it (foreign key, ``ON DELETE CASCADE``).
"""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

__all__ = ["StoredItem", "push", "pending", "has_acknowledged", "ack"]


@dataclass(frozen=True)
class StoredItem:
    position: int
    kind: str
    sender_user: str | None
    sender_device: str | None
    room_id: str | None
    payload: bytes


async def push(tx: aiosqlite.Connection, position: int, user_id: str, device_id: str, kind: str,
               payload: bytes, *, sender: tuple[str, str] | None, room_id: str | None,
               now_ms: int) -> None:
    """Queue one item for (user, device) at ``position`` (from ``next_stream_position``)."""
    await tx.execute(
        "INSERT INTO inbox (stream_pos, user_id, device_id, kind, sender_user, sender_device, room_id, "
        "payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (position, user_id, device_id, kind, sender[0] if sender else None,
         sender[1] if sender else None, room_id, payload, now_ms))


async def pending(conn: aiosqlite.Connection, user_id: str, device_id: str, after: int,
                  limit: int) -> list[StoredItem]:
    rows = await conn.execute_fetchall(
        "SELECT stream_pos, kind, sender_user, sender_device, room_id, payload FROM inbox "
        "WHERE user_id = ? AND device_id = ? AND stream_pos > ? ORDER BY stream_pos LIMIT ?",
        (user_id, device_id, after, limit))
    return [StoredItem(r[0], r[1], r[2], r[3], r[4], bytes(r[5])) for r in rows]


async def has_acknowledged(conn: aiosqlite.Connection, user_id: str, device_id: str,
                           upto: int) -> bool:
    """Whether any item at or before ``upto`` is still stored (so :func:`ack` has work)."""
    rows = await conn.execute_fetchall("SELECT 1 FROM inbox WHERE user_id = ? AND device_id = ? "
                                       "AND stream_pos <= ? LIMIT 1", (user_id, device_id, upto))
    return bool(rows)


async def ack(tx: aiosqlite.Connection, user_id: str, device_id: str, upto: int) -> int:
    """Delete the device's items at or before ``upto``; returns how many."""
    cur = await tx.execute("DELETE FROM inbox WHERE user_id = ? AND device_id = ? AND stream_pos <= ?",
                           (user_id, device_id, upto))
    return cur.rowcount
