"""Second factors: ``mfa_totp`` (one sealed TOTP secret per account) and ``mfa_recovery_codes``.

Functions take the connection of an open transaction or read. The secret is
stored only sealed (:class:`server.services.mfa.MfaKeys`); recovery codes only
as MACs. :func:`use_step` and :func:`use_recovery_code` are the single-use
checks: each is one conditional ``UPDATE`` whose row count says whether this
caller was the one that used the step or the code, so two concurrent requests
with the same code cannot both succeed.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

__all__ = ["TotpRow", "get", "begin", "enable", "disable", "use_step", "use_recovery_code",
           "recovery_codes_left"]


@dataclass(frozen=True)
class TotpRow:
    user_id: str
    sealed_secret: bytes
    created_at: int
    enabled_at: int | None  # None: an enrolment waiting for its first code
    last_step: int

    @property
    def enabled(self) -> bool:
        return self.enabled_at is not None


async def get(conn: aiosqlite.Connection, user_id: str) -> TotpRow | None:
    rows = await conn.execute_fetchall(
        "SELECT user_id, sealed_secret, created_at, enabled_at, last_step FROM mfa_totp "
        "WHERE user_id = ?", (user_id,))
    return TotpRow(*rows[0]) if rows else None


async def begin(tx: aiosqlite.Connection, user_id: str, sealed_secret: bytes, now_ms: int) -> None:
    """A new pending enrolment (replacing a pending one; never an enabled one)."""
    await tx.execute("DELETE FROM mfa_totp WHERE user_id = ? AND enabled_at IS NULL", (user_id,))
    await tx.execute("INSERT INTO mfa_totp (user_id, sealed_secret, created_at) VALUES (?, ?, ?)",
                     (user_id, sealed_secret, now_ms))


async def enable(tx: aiosqlite.Connection, user_id: str, step: int, code_macs: list[bytes],
                 now_ms: int) -> bool:
    """Turn a pending enrolment on (its first code used ``step``) with new recovery codes;
    False if there was no pending enrolment."""
    cur = await tx.execute(
        "UPDATE mfa_totp SET enabled_at = ?, last_step = ? WHERE user_id = ? AND enabled_at IS NULL",
        (now_ms, step, user_id))
    if cur.rowcount != 1:
        return False
    await tx.execute("DELETE FROM mfa_recovery_codes WHERE user_id = ?", (user_id,))
    await tx.executemany("INSERT INTO mfa_recovery_codes (user_id, code_mac) VALUES (?, ?)",
                         [(user_id, mac) for mac in code_macs])
    return True


async def disable(tx: aiosqlite.Connection, user_id: str) -> None:
    await tx.execute("DELETE FROM mfa_totp WHERE user_id = ?", (user_id,))
    await tx.execute("DELETE FROM mfa_recovery_codes WHERE user_id = ?", (user_id,))


async def use_step(tx: aiosqlite.Connection, user_id: str, step: int) -> bool:
    """Record ``step`` as used; False if it (or a later one) was used already."""
    cur = await tx.execute(
        "UPDATE mfa_totp SET last_step = ? WHERE user_id = ? AND enabled_at IS NOT NULL "
        "AND last_step < ?", (step, user_id, step))
    return cur.rowcount == 1


async def use_recovery_code(tx: aiosqlite.Connection, user_id: str, code_mac: bytes,
                            now_ms: int) -> bool:
    """Mark an unused recovery code used; False if it is unknown or used."""
    cur = await tx.execute(
        "UPDATE mfa_recovery_codes SET used_at = ? WHERE user_id = ? AND code_mac = ? "
        "AND used_at IS NULL", (now_ms, user_id, code_mac))
    return cur.rowcount == 1


async def recovery_codes_left(conn: aiosqlite.Connection, user_id: str) -> int:
    rows = await conn.execute_fetchall(
        "SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = ? AND used_at IS NULL", (user_id,))
    return int(rows[0][0])
