"""Single-use invite codes, stored only as SHA-256 of the normalized code (``invites``)."""

from __future__ import annotations

import aiosqlite

from .errors import InviteUnusable

__all__ = ["insert", "usable", "consume"]


async def insert(tx: aiosqlite.Connection, code_hash: bytes, role: str, now_ms: int, expires_ms: int) -> None:
    await tx.execute(
        "INSERT INTO invites (code_hash, role, created_at, expires_at) VALUES (?, ?, ?, ?)",
        (code_hash, role, now_ms, expires_ms),
    )


async def usable(conn: aiosqlite.Connection, code_hash: bytes, now_ms: int) -> bool:
    """Whether the invite exists, is unused and unexpired (a read; :func:`consume` decides)."""
    async with conn.execute(
        "SELECT 1 FROM invites WHERE code_hash = ? AND used_at IS NULL AND expires_at > ?",
        (code_hash, now_ms),
    ) as cur:
        return await cur.fetchone() is not None


async def consume(tx: aiosqlite.Connection, code_hash: bytes, user_id: str, now_ms: int) -> str:
    """Mark the invite used by ``user_id`` and return its role.

    Raises :class:`InviteUnusable` when the code is unknown, used or expired
    (one error for all three, so a guesser learns nothing). Call inside the
    transaction that creates the account: a rollback un-uses the invite.
    """
    cur = await tx.execute(
        "UPDATE invites SET used_at = ?, used_by = ? "
        "WHERE code_hash = ? AND used_at IS NULL AND expires_at > ? RETURNING role",
        (now_ms, user_id, code_hash, now_ms),
    )
    row = await cur.fetchone()
    await cur.close()
    if row is None:
        raise InviteUnusable("invite code unknown, used or expired")
    return str(row[0])
