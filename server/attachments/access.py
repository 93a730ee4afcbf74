"""Who may read an attachment (``spec/client-server.md`` 11.3): its uploader, and the current
and past members of the rooms where it was announced, within what they could read.

Tables ``attachment_uploads`` (content id, uploading user) and ``attachment_links``
(content id, room, seq of the announcing message, the linking device). A link counts only
while the room's stored event at that seq was sent by the linking device, so a link cannot
name another member's message; a device reads through a link when one of its membership
intervals of the room holds that seq (it could read the announcement). Everyone else gets
the answer of an unknown content id (``not_found``), so a known hash reveals nothing.
"""

from __future__ import annotations

import aiosqlite

__all__ = ["record_upload", "record_link", "may_read"]


async def record_upload(tx: aiosqlite.Connection, content_id: str, user_id: str) -> None:
    await tx.execute("INSERT OR IGNORE INTO attachment_uploads (content_id, user_id) VALUES (?, ?)",
                     (content_id, user_id))


async def record_link(tx: aiosqlite.Connection, content_id: str, room_id: str, seq: int,
                      user_id: str, device_id: str) -> None:
    await tx.execute("INSERT OR IGNORE INTO attachment_links (content_id, room_id, seq, user_id, "
                     "device_id) VALUES (?, ?, ?, ?, ?)", (content_id, room_id, seq, user_id, device_id))


async def may_read(conn: aiosqlite.Connection, content_id: str, user_id: str, device_id: str) -> bool:
    """Whether the device's user uploaded the attachment, or the device is or was a member of
    a room where a link's announcing message (sent by the linker) is inside its membership."""
    async with conn.execute(
        "SELECT 1 FROM attachment_uploads WHERE content_id = ? AND user_id = ? UNION ALL "
        "SELECT 1 FROM attachment_links l JOIN room_events e ON e.room_id = l.room_id AND "
        "e.seq = l.seq AND e.sender_user = l.user_id AND e.sender_device = l.device_id "
        "JOIN room_members m ON m.room_id = l.room_id AND m.user_id = ? AND m.device_id = ? "
        "AND m.first_seq <= l.seq AND (m.last_seq IS NULL OR l.seq <= m.last_seq) "
        "WHERE l.content_id = ? LIMIT 1",
        (content_id, user_id, user_id, device_id, content_id)) as cur:
        return await cur.fetchone() is not None
