"""The key directory's KeyPackages (``key_packages``).

One-time packages are handed out at most once: :func:`claim_one` selects and
deletes in the caller's write transaction, and write transactions are
serialized (``BEGIN IMMEDIATE`` under the database lock), so two concurrent
claims never get the same package. The last-resort package of a device is
kept when handed out; a device has at most one (a partial unique index).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import aiosqlite

from .errors import AlreadyExists

__all__ = ["KeyPackageRow", "NewKeyPackage", "store_batch", "count", "claim_one", "delete_expired"]


@dataclass(frozen=True)
class NewKeyPackage:
    ref: bytes
    data: bytes
    last_resort: bool
    not_before: int  # seconds
    not_after: int


@dataclass(frozen=True)
class KeyPackageRow:
    data: bytes
    last_resort: bool


async def store_batch(
    tx: aiosqlite.Connection, user_id: str, device_id: str, batch: list[NewKeyPackage], now_ms: int
) -> None:
    """Insert the batch; a last-resort package in it replaces the device's previous one.

    Raises :class:`AlreadyExists` when a KeyPackageRef is already stored.
    """
    if any(kp.last_resort for kp in batch):
        await tx.execute(
            "DELETE FROM key_packages WHERE user_id = ? AND device_id = ? AND last_resort = 1",
            (user_id, device_id),
        )
    try:
        await tx.executemany(
            "INSERT INTO key_packages (user_id, device_id, ref, data, last_resort, not_before, "
            "not_after, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(user_id, device_id, kp.ref, kp.data, int(kp.last_resort), kp.not_before, kp.not_after, now_ms)
             for kp in batch],
        )
    except sqlite3.IntegrityError as exc:
        raise AlreadyExists("a KeyPackage with this reference is already stored") from exc


async def count(conn: aiosqlite.Connection, user_id: str, device_id: str, now_s: int) -> tuple[int, bool]:
    """(unexpired one-time packages, whether an unexpired last-resort one exists)."""
    async with conn.execute(
        "SELECT last_resort, COUNT(*) FROM key_packages WHERE user_id = ? AND device_id = ? "
        "AND not_before <= ? AND not_after >= ? GROUP BY last_resort",
        (user_id, device_id, now_s, now_s),
    ) as cur:
        counts = dict(await cur.fetchall())
    return int(counts.get(0, 0)), bool(counts.get(1, 0))


async def claim_one(tx: aiosqlite.Connection, user_id: str, device_id: str, now_s: int) -> KeyPackageRow | None:
    """The oldest valid one-time package (deleted), else the valid last-resort one (kept), else None.

    Packages outside their lifetime at ``now_s`` are never returned.
    """
    cur = await tx.execute(
        "DELETE FROM key_packages WHERE id = (SELECT id FROM key_packages WHERE user_id = ? AND "
        "device_id = ? AND last_resort = 0 AND not_before <= ? AND not_after >= ? ORDER BY id LIMIT 1) "
        "RETURNING data",
        (user_id, device_id, now_s, now_s),
    )
    row = await cur.fetchone()
    await cur.close()
    if row is not None:
        return KeyPackageRow(bytes(row[0]), False)
    async with tx.execute(
        "SELECT data FROM key_packages WHERE user_id = ? AND device_id = ? AND last_resort = 1 "
        "AND not_before <= ? AND not_after >= ?",
        (user_id, device_id, now_s, now_s),
    ) as cur2:
        row = await cur2.fetchone()
    return None if row is None else KeyPackageRow(bytes(row[0]), True)


async def delete_expired(tx: aiosqlite.Connection, now_s: int) -> int:
    """Drop every package whose lifetime ended; returns how many."""
    cur = await tx.execute("DELETE FROM key_packages WHERE not_after < ?", (now_s,))
    return cur.rowcount
