"""Device inboxes (``inbox``): Welcomes and device-to-device payloads, one row per item.

Each item has a position in the one delivery stream (shared with room events);
a sync token past the position acknowledges it and :func:`ack` deletes it. Rows
of a removed device go with it (foreign key, ``ON DELETE CASCADE``).

Quotas (finding 10, ``spec/security.md``): ``inbox_usage`` holds each device's
item count and payload bytes (kept by triggers). :func:`push` of a ``to_device``
item that would take the inbox past :class:`Quota` raises
:class:`~protocol.room_errors.InboxFull` (the caller's transaction is rolled
back: nothing of the request is queued). A ``welcome`` may go past the to-device
quota by :attr:`Quota.welcome_reserve` (so a to-device flood cannot block
invitations, whose number the claim limits bound); beyond that it is not queued
and :func:`push` returns False (the room event that carried it is still accepted).
"""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from protocol.room_errors import InboxFull

__all__ = ["StoredItem", "ItemSize", "Quota", "DEFAULT_QUOTA", "push", "usage", "pending",
           "pending_sizes", "items_upto", "has_acknowledged", "ack"]


@dataclass(frozen=True)
class StoredItem:
    position: int
    kind: str
    sender_user: str | None
    sender_device: str | None
    room_id: str | None
    payload: bytes


@dataclass(frozen=True)
class ItemSize:
    position: int
    size: int


@dataclass(frozen=True)
class Quota:
    """What one device's inbox may hold (``[delivery]`` in the configuration)."""

    max_items: int = 10_000
    max_bytes: int = 64 * 1024 * 1024

    @property
    def welcome_reserve(self) -> tuple[int, int]:
        """(items, bytes) a Welcome may use beyond the quota: a tenth of it."""
        return max(1, self.max_items // 10), max(1, self.max_bytes // 10)


DEFAULT_QUOTA = Quota()


async def usage(conn: aiosqlite.Connection, user_id: str, device_id: str) -> tuple[int, int]:
    """(items, payload bytes) in the device's inbox."""
    rows = await conn.execute_fetchall(
        "SELECT items, bytes FROM inbox_usage WHERE user_id = ? AND device_id = ?", (user_id, device_id))
    return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)  # type: ignore[index]


async def push(tx: aiosqlite.Connection, position: int, user_id: str, device_id: str, kind: str,
               payload: bytes, *, sender: tuple[str, str] | None, room_id: str | None,
               now_ms: int, quota: Quota = DEFAULT_QUOTA) -> bool:
    """Queue one item for (user, device) at ``position`` (from ``next_stream_position``)
    within ``quota`` (see the module docstring): True if queued; a Welcome over its
    allowance returns False; a to-device item over the quota raises :class:`InboxFull`."""
    items, size = await usage(tx, user_id, device_id)
    max_items, max_bytes = quota.max_items, quota.max_bytes
    if kind == "welcome":
        extra_items, extra_bytes = quota.welcome_reserve
        max_items, max_bytes = max_items + extra_items, max_bytes + extra_bytes
    if items + 1 > max_items or size + len(payload) > max_bytes:
        if kind == "welcome":
            return False
        raise InboxFull("a target device's inbox is full; send again once it has synced")
    await tx.execute(
        "INSERT INTO inbox (stream_pos, user_id, device_id, kind, sender_user, sender_device, room_id, "
        "payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (position, user_id, device_id, kind, sender[0] if sender else None,
         sender[1] if sender else None, room_id, payload, now_ms))
    return True


async def pending(conn: aiosqlite.Connection, user_id: str, device_id: str, after: int,
                  limit: int) -> list[StoredItem]:
    rows = await conn.execute_fetchall(
        "SELECT stream_pos, kind, sender_user, sender_device, room_id, payload FROM inbox "
        "WHERE user_id = ? AND device_id = ? AND stream_pos > ? ORDER BY stream_pos LIMIT ?",
        (user_id, device_id, after, limit))
    return [StoredItem(r[0], r[1], r[2], r[3], r[4], bytes(r[5])) for r in rows]


async def pending_sizes(conn: aiosqlite.Connection, user_id: str, device_id: str, after: int,
                        limit: int) -> list[ItemSize]:
    """Positions and payload sizes of the device's items after ``after`` (no payloads read)."""
    rows = await conn.execute_fetchall(
        "SELECT stream_pos, length(payload) FROM inbox "
        "WHERE user_id = ? AND device_id = ? AND stream_pos > ? ORDER BY stream_pos LIMIT ?",
        (user_id, device_id, after, limit))
    return [ItemSize(int(r[0]), int(r[1])) for r in rows]


async def items_upto(conn: aiosqlite.Connection, user_id: str, device_id: str, after: int,
                     upto: int) -> list[StoredItem]:
    """The device's items with ``after < position <= upto``, in stream order."""
    rows = await conn.execute_fetchall(
        "SELECT stream_pos, kind, sender_user, sender_device, room_id, payload FROM inbox "
        "WHERE user_id = ? AND device_id = ? AND stream_pos > ? AND stream_pos <= ? "
        "ORDER BY stream_pos", (user_id, device_id, after, upto))
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
