"""Whether a device is its account's root, pending, or approved (``device_trust``).

One row per device ever created (rows outlive their device, so an approval chain
through a removed approver still resolves). A device without a row is pending.
Functions take a connection inside a :class:`~server.storage.database.Database`
transaction or read.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import aiosqlite

from .errors import NoSuchRow

__all__ = ["TrustState", "Trust", "create", "get", "for_user", "set_added", "approve", "chain",
           "forget_user", "MAX_CHAIN"]

#: Longest chain :func:`chain` walks (protocol.api.MAX_APPROVAL_CHAIN).
MAX_CHAIN = 64

_COLUMNS = "user_id, device_id, state, signature_key, added_index, approver, approval_index"


class TrustState(enum.StrEnum):
    ROOT = "root"  # the device that registered the account
    PENDING = "pending"  # created by login, waiting for an approved device's signature
    APPROVED = "approved"

    @property
    def active(self) -> bool:
        return self is not TrustState.PENDING


@dataclass(frozen=True)
class Trust:
    user_id: str
    device_id: str
    state: TrustState
    signature_key: bytes | None
    added_index: int | None  # its device_added entry
    approver: str | None
    approval_index: int | None  # its device_approved entry

    @classmethod
    def from_row(cls, row: tuple) -> Trust:
        u, d, state, key, added, approver, approval = row
        return cls(u, d, TrustState(state), None if key is None else bytes(key), added, approver,
                   approval)


async def create(tx: aiosqlite.Connection, user_id: str, device_id: str, state: TrustState) -> None:
    await tx.execute("INSERT INTO device_trust (user_id, device_id, state) VALUES (?, ?, ?)",
                     (user_id, device_id, state.value))


async def get(conn: aiosqlite.Connection, user_id: str, device_id: str) -> Trust | None:
    async with conn.execute(f"SELECT {_COLUMNS} FROM device_trust WHERE user_id = ? AND device_id = ?",
                            (user_id, device_id)) as cur:
        row = await cur.fetchone()
    return None if row is None else Trust.from_row(row)


async def for_user(conn: aiosqlite.Connection, user_id: str, limit: int = 1024) -> dict[str, Trust]:
    """Every row of ``user_id``, by device id."""
    async with conn.execute(f"SELECT {_COLUMNS} FROM device_trust WHERE user_id = ? LIMIT ?",
                            (user_id, limit)) as cur:
        return {row[1]: Trust.from_row(row) for row in await cur.fetchall()}


async def set_added(tx: aiosqlite.Connection, user_id: str, device_id: str, signature_key: bytes,
                    log_index: int) -> None:
    """The device registered ``signature_key`` at ``log_index`` (a device without a row
    gets one, pending)."""
    await tx.execute(
        "INSERT INTO device_trust (user_id, device_id, state, signature_key, added_index) "
        "VALUES (?, ?, 'pending', ?, ?) ON CONFLICT (user_id, device_id) DO UPDATE SET "
        "signature_key = excluded.signature_key, added_index = excluded.added_index",
        (user_id, device_id, signature_key, log_index))


async def approve(tx: aiosqlite.Connection, user_id: str, device_id: str, approver: str,
                  log_index: int) -> None:
    """Pending -> approved; raises :class:`NoSuchRow` if the device is not pending."""
    cur = await tx.execute(
        "UPDATE device_trust SET state = 'approved', approver = ?, approval_index = ? "
        "WHERE user_id = ? AND device_id = ? AND state = 'pending'",
        (approver, log_index, user_id, device_id))
    if cur.rowcount == 0:
        raise NoSuchRow(f"device {device_id} is not pending")


async def forget_user(tx: aiosqlite.Connection, user_id: str) -> None:
    """Drop ``user_id``'s device tree (account recovery: the next device is a new root)."""
    await tx.execute("DELETE FROM device_trust WHERE user_id = ?", (user_id,))


def chain(rows: dict[str, Trust], device_id: str) -> tuple[int, ...] | None:
    """The log indexes proving ``device_id``'s approval (``protocol.api.DeviceKeys.chain``):
    its device_approved entry, its approver's, ..., then the root's device_added; ``()``
    for the root itself; None when there is no such chain (pending, a loop, too long)."""
    out: list[int] = []
    seen: set[str] = set()
    current = rows.get(device_id)
    while current is not None and current.device_id not in seen and len(out) < MAX_CHAIN:
        seen.add(current.device_id)
        if current.state is TrustState.ROOT:
            if current.device_id != device_id:
                if current.added_index is None:
                    return None
                out.append(current.added_index)
            return tuple(out)
        if current.state is not TrustState.APPROVED or current.approval_index is None \
                or current.approver is None:
            return None
        out.append(current.approval_index)
        current = rows.get(current.approver)
    return None
