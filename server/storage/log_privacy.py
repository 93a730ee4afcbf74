"""Auditor credentials (``log_auditors``) and open failed-login windows
(``failed_login_windows``): the tables of the private log (issue 10, finding 1).

Auditor credentials are stored only as the SHA-256 of the token. Raises
:class:`~server.storage.errors.AlreadyExists` for an auditor name in use and
:class:`~server.storage.errors.NoSuchRow` for revoking an unknown one.
"""

from __future__ import annotations

from typing import NamedTuple

import aiosqlite

from .errors import AlreadyExists, NoSuchRow

__all__ = ["Auditor", "add_auditor", "list_auditors", "revoke_auditor", "auditor_by_token",
           "count_failure", "closed_windows", "delete_window"]


class Auditor(NamedTuple):
    name: str
    created_at: int
    revoked_at: int | None


async def add_auditor(tx: aiosqlite.Connection, name: str, token_hash: bytes, now_ms: int) -> None:
    try:
        await tx.execute("INSERT INTO log_auditors (name, token_hash, created_at) VALUES (?, ?, ?)",
                         (name, token_hash, now_ms))
    except aiosqlite.IntegrityError:
        raise AlreadyExists(f"auditor {name} exists") from None


async def list_auditors(conn: aiosqlite.Connection) -> list[Auditor]:
    async with conn.execute("SELECT name, created_at, revoked_at FROM log_auditors ORDER BY name") as cur:
        return [Auditor(*r) for r in await cur.fetchall()]


async def revoke_auditor(tx: aiosqlite.Connection, name: str, now_ms: int) -> None:
    cur = await tx.execute(
        "UPDATE log_auditors SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (now_ms, name))
    if cur.rowcount == 0:
        raise NoSuchRow(f"no valid auditor {name}")


async def auditor_by_token(conn: aiosqlite.Connection, token_hash: bytes) -> str | None:
    """The name of the valid (unrevoked) auditor holding the credential of ``token_hash``."""
    async with conn.execute(
        "SELECT name FROM log_auditors WHERE token_hash = ? AND revoked_at IS NULL", (token_hash,)
    ) as cur:
        row = await cur.fetchone()
    return None if row is None else row[0]


async def count_failure(tx: aiosqlite.Connection, window_start: int) -> None:
    """One more failed login in the window starting at ``window_start`` (ms)."""
    await tx.execute(
        "INSERT INTO failed_login_windows (window_start, count) VALUES (?, 1) "
        "ON CONFLICT (window_start) DO UPDATE SET count = count + 1", (window_start,))


async def closed_windows(conn: aiosqlite.Connection, before: int) -> list[tuple[int, int]]:
    """``(window_start, count)`` of the windows that started before ``before``, oldest first."""
    async with conn.execute(
        "SELECT window_start, count FROM failed_login_windows WHERE window_start < ? "
        "ORDER BY window_start", (before,),
    ) as cur:
        return [(r[0], r[1]) for r in await cur.fetchall()]


async def delete_window(tx: aiosqlite.Connection, window_start: int) -> None:
    await tx.execute("DELETE FROM failed_login_windows WHERE window_start = ?", (window_start,))
