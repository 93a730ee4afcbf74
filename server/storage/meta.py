"""Facts fixed when the database is created (``server_meta``), such as the server name.

The server name is part of every user and room id, so a database answers to
one name for life: :func:`pin` records it on first use and raises
:class:`NameMismatch` when a later start names another.
"""

from __future__ import annotations

import aiosqlite

from .errors import StorageError

__all__ = ["NameMismatch", "get", "pin"]


class NameMismatch(StorageError):
    code = "internal"


async def get(conn: aiosqlite.Connection, key: str) -> str | None:
    async with conn.execute("SELECT value FROM server_meta WHERE key = ?", (key,)) as cur:
        row = await cur.fetchone()
    return None if row is None else str(row[0])


async def pin(tx: aiosqlite.Connection, key: str, value: str) -> None:
    """Record ``value`` under ``key`` if absent; raises :class:`NameMismatch` if it differs."""
    current = await get(tx, key)
    if current is None:
        await tx.execute("INSERT INTO server_meta (key, value) VALUES (?, ?)", (key, value))
    elif current != value:
        raise NameMismatch(f"this database belongs to {key} {current!r}, not {value!r}")
