"""Accounts: ``accounts`` rows (user id, role, Argon2id password hash).

Functions take the connection of an open :class:`~server.storage.database.Database`
transaction or read. Raises domain errors from :mod:`server.storage.errors`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import aiosqlite

from .errors import UserAlreadyExists

__all__ = ["AccountRow", "create", "get", "exists"]


@dataclass(frozen=True)
class AccountRow:
    user_id: str
    role: str
    password_hash: str
    created_at: int


async def create(tx: aiosqlite.Connection, user_id: str, role: str, password_hash: str, now_ms: int) -> None:
    """Insert an account; raises :class:`UserAlreadyExists` if the user id is taken."""
    try:
        await tx.execute(
            "INSERT INTO accounts (user_id, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
            (user_id, role, password_hash, now_ms),
        )
    except sqlite3.IntegrityError as exc:
        raise UserAlreadyExists(f"{user_id} exists") from exc


async def get(conn: aiosqlite.Connection, user_id: str) -> AccountRow | None:
    async with conn.execute(
        "SELECT user_id, role, password_hash, created_at FROM accounts WHERE user_id = ?", (user_id,)
    ) as cur:
        row = await cur.fetchone()
    return None if row is None else AccountRow(*row)


async def exists(conn: aiosqlite.Connection, user_id: str) -> bool:
    async with conn.execute("SELECT 1 FROM accounts WHERE user_id = ?", (user_id,)) as cur:
        return await cur.fetchone() is not None
