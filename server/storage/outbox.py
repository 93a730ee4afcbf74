"""Audit entries written by offline commands (``confide admin``), appended by the server.

The admin commands must not append to the transparency log themselves (the
running server owns the log's in-memory tree), so they queue the encoded
entry in ``audit_outbox`` in the same transaction as the change it records.
The server drains the outbox at start and periodically
(:class:`server.services.audit.AuditLog`).
"""

from __future__ import annotations

import aiosqlite

__all__ = ["push", "push_many", "peek", "remove"]


async def push(tx: aiosqlite.Connection, entry: bytes) -> None:
    await tx.execute("INSERT INTO audit_outbox (entry) VALUES (?)", (entry,))


async def push_many(tx: aiosqlite.Connection, entries: list[bytes]) -> None:
    """Queue several entries, in order, in one statement."""
    await tx.executemany("INSERT INTO audit_outbox (entry) VALUES (?)", [(e,) for e in entries])


async def peek(conn: aiosqlite.Connection, limit: int = 256) -> list[tuple[int, bytes]]:
    rows = await conn.execute_fetchall("SELECT id, entry FROM audit_outbox ORDER BY id LIMIT ?",
                                       (limit,))
    return [(row[0], bytes(row[1])) for row in rows]


async def remove(conn: aiosqlite.Connection, ids: list[int]) -> None:
    """Delete the given entries in one statement (at most 32,766 ids: SQLite's variable limit)."""
    if ids:
        await conn.execute(f"DELETE FROM audit_outbox WHERE id IN ({', '.join('?' * len(ids))})",
                           ids)
