"""The hub's device-approval check (``spec/security.md`` finding 2).

A device of this server's users joins a room only once it is its account's root or has
an approval chain (:mod:`server.storage.device_trust`): the hub refuses a commit that adds
a pending device, a room created by one, an external join by one, and a pending device's
submission to another server's hub. Devices of other servers are checked by their own
server (they are never handed out while pending) and by the members' clients.

Raises :class:`~protocol.device_approval.DeviceNotApproved`.
"""

from __future__ import annotations

from collections.abc import Iterable

import aiosqlite

from protocol.device_approval import DeviceNotApproved
from protocol.ids import UserId
from server.storage import device_trust

__all__ = ["require_approved"]


async def require_approved(conn: aiosqlite.Connection, server_name: str,
                           members: Iterable[tuple[str, str]]) -> None:
    """Raise :class:`DeviceNotApproved` if one of ``members`` (user, device) is a device of
    ``server_name`` without an approval chain."""
    rows: dict[str, dict[str, device_trust.Trust]] = {}
    for user, device in members:
        if UserId.parse(user).server != server_name:
            continue
        if user not in rows:
            rows[user] = await device_trust.for_user(conn, user)
        if device_trust.chain(rows[user], device) is None:
            raise DeviceNotApproved(f"{user}/{device} waits for approval by another device of its user")
