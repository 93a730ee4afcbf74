"""Access tokens, stored only as their SHA-256 (``access_tokens``).

A token is bound to one device and has a ``scope``: ``full``, or ``mfa_enrolment``
(it may only enrol a second factor, see :mod:`server.services.mfa`). ``last_used`` is written coarsely (the caller
decides when, see :class:`server.services.sessions.Sessions`).
"""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

__all__ = ["TokenRow", "FULL", "MFA_ENROLMENT", "insert", "lookup", "touch", "delete",
           "delete_for_device", "set_scope", "restrict_user"]

#: Token scopes.
FULL = "full"
MFA_ENROLMENT = "mfa_enrolment"


@dataclass(frozen=True)
class TokenRow:
    token_hash: bytes
    user_id: str
    device_id: str
    created_at: int
    last_used: int
    role: str  # the account's role, joined in by lookup
    scope: str = FULL


async def insert(tx: aiosqlite.Connection, token_hash: bytes, user_id: str, device_id: str, now_ms: int,
                 scope: str = FULL) -> None:
    await tx.execute(
        "INSERT INTO access_tokens (token_hash, user_id, device_id, created_at, last_used, scope) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (token_hash, user_id, device_id, now_ms, now_ms, scope),
    )


async def set_scope(tx: aiosqlite.Connection, token_hash: bytes, scope: str) -> None:
    await tx.execute("UPDATE access_tokens SET scope = ? WHERE token_hash = ?", (scope, token_hash))


async def restrict_user(tx: aiosqlite.Connection, user_id: str) -> int:
    """Every token of ``user_id`` becomes an enrolment-only one; returns how many."""
    cur = await tx.execute("UPDATE access_tokens SET scope = ? WHERE user_id = ?",
                           (MFA_ENROLMENT, user_id))
    return cur.rowcount


async def lookup(conn: aiosqlite.Connection, token_hash: bytes) -> TokenRow | None:
    rows = await conn.execute_fetchall(
        "SELECT t.token_hash, t.user_id, t.device_id, t.created_at, t.last_used, a.role, t.scope "
        "FROM access_tokens t JOIN accounts a ON a.user_id = t.user_id WHERE t.token_hash = ?",
        (token_hash,),
    )
    return TokenRow(*rows[0]) if rows else None


async def touch(tx: aiosqlite.Connection, token_hash: bytes, now_ms: int) -> None:
    await tx.execute("UPDATE access_tokens SET last_used = ? WHERE token_hash = ?", (now_ms, token_hash))


async def delete(tx: aiosqlite.Connection, token_hash: bytes) -> bool:
    """Delete one token; returns whether it existed."""
    cur = await tx.execute("DELETE FROM access_tokens WHERE token_hash = ?", (token_hash,))
    return cur.rowcount > 0


async def delete_for_device(tx: aiosqlite.Connection, user_id: str, device_id: str) -> int:
    cur = await tx.execute(
        "DELETE FROM access_tokens WHERE user_id = ? AND device_id = ?", (user_id, device_id)
    )
    return cur.rowcount
