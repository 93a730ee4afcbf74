"""Devices: one row per (user, device), with the device's keys once registered.

Functions take a connection inside a :class:`~server.storage.database.Database`
transaction or read. Removing a device cascades to its access tokens and
KeyPackages (foreign keys).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import aiosqlite

from .errors import AlreadyExists, NoSuchRow

__all__ = ["Device", "create", "get", "list_for_user", "set_keys", "key_in_use", "touch", "delete"]

_COLUMNS = "user_id, device_id, created_at, last_seen, signature_key, credential, key_log_index"


@dataclass(frozen=True)
class Device:
    user_id: str
    device_id: str
    created_at: int
    last_seen: int
    signature_key: bytes | None
    credential: bytes | None
    key_log_index: int | None

    @property
    def has_keys(self) -> bool:
        return self.signature_key is not None


async def create(
    tx: aiosqlite.Connection, user_id: str, device_id: str, now_ms: int
) -> None:
    """Insert a device without keys; raises :class:`AlreadyExists` for a taken device id."""
    try:
        await tx.execute(
            "INSERT INTO devices (user_id, device_id, created_at, last_seen) "
            "VALUES (?, ?, ?, ?)",
            (user_id, device_id, now_ms, now_ms),
        )
    except sqlite3.IntegrityError as exc:
        raise AlreadyExists(f"device {device_id} exists") from exc


async def get(conn: aiosqlite.Connection, user_id: str, device_id: str) -> Device | None:
    async with conn.execute(
        f"SELECT {_COLUMNS} FROM devices WHERE user_id = ? AND device_id = ?", (user_id, device_id)
    ) as cur:
        row = await cur.fetchone()
    return None if row is None else Device(*row)


async def list_for_user(conn: aiosqlite.Connection, user_id: str, limit: int = 256) -> list[Device]:
    async with conn.execute(
        f"SELECT {_COLUMNS} FROM devices WHERE user_id = ? ORDER BY created_at, device_id LIMIT ?",
        (user_id, limit),
    ) as cur:
        return [Device(*row) for row in await cur.fetchall()]


async def set_keys(
    tx: aiosqlite.Connection, user_id: str, device_id: str, signature_key: bytes, credential: bytes,
    log_index: int,
) -> None:
    """Record the device's registered keys; raises :class:`NoSuchRow` if the device is gone,
    :class:`AlreadyExists` if it already has keys or another device uses this key."""
    try:
        cur = await tx.execute(
            "UPDATE devices SET signature_key = ?, credential = ?, key_log_index = ? "
            "WHERE user_id = ? AND device_id = ? AND signature_key IS NULL",
            (signature_key, credential, log_index, user_id, device_id),
        )
    except sqlite3.IntegrityError as exc:
        raise AlreadyExists("another device registered this signature key") from exc
    if cur.rowcount == 0:
        if await get(tx, user_id, device_id) is None:
            raise NoSuchRow(f"device {device_id} does not exist")
        raise AlreadyExists(f"device {device_id} already registered its keys")


async def key_in_use(conn: aiosqlite.Connection, signature_key: bytes) -> bool:
    """Whether any device registered ``signature_key``."""
    async with conn.execute("SELECT 1 FROM devices WHERE signature_key = ?", (signature_key,)) as cur:
        return await cur.fetchone() is not None


async def touch(tx: aiosqlite.Connection, user_id: str, device_id: str, now_ms: int) -> None:
    await tx.execute(
        "UPDATE devices SET last_seen = ? WHERE user_id = ? AND device_id = ?", (now_ms, user_id, device_id)
    )


async def delete(tx: aiosqlite.Connection, user_id: str, device_id: str) -> None:
    """Delete the device, its tokens and its KeyPackages; :class:`NoSuchRow` if absent."""
    cur = await tx.execute("DELETE FROM devices WHERE user_id = ? AND device_id = ?", (user_id, device_id))
    if cur.rowcount == 0:
        raise NoSuchRow(f"device {device_id} does not exist")
