"""Invites and admin-created accounts (used by ``confide admin`` and by registration).

An invite code is 10 random bytes in base32, shown as four groups of four
(``ABCD-EFGH-JKLM-NPQR``, 80 bits). Only SHA-256 of the normalized code
(upper case, without dashes or spaces) is stored. Codes are single-use and
expire after ``invites.lifetime``. ``confide admin invite`` prints the code with the
server's trust anchor, ``CODE#ANCHOR`` (``protocol.trust``).
"""

from __future__ import annotations

import base64
import hashlib

from crypto.rng import Rng
from protocol.api import INVITE_ROLES, ROLES
from protocol.audit import AccessAction, AccessEvent, DeviceRemoved, RemovalReason
from protocol.ids import UserId
from server.storage import Database, NoSuchRow, accounts, device_trust, devices, invites, mfa

from .audit import AuditTrail
from .clock import Clock, now_ms

__all__ = ["new_invite_code", "invite_hash", "create_invite", "create_account", "reset_mfa",
           "reset_devices"]

_INVITE_LABEL = b"confide.invite.v1\x00"


def new_invite_code(rng: Rng) -> str:
    text = base64.b32encode(rng(10)).decode()
    return "-".join(text[i : i + 4] for i in range(0, 16, 4))


def invite_hash(code: str) -> bytes:
    """SHA-256 over a label and the normalized code (case, dashes and spaces ignored; a
    ``#ANCHOR`` suffix, the trust anchor a client checks, is not part of the code)."""
    normalized = code.partition("#")[0].upper().replace("-", "").replace(" ", "")
    return hashlib.sha256(_INVITE_LABEL + normalized.encode()).digest()


async def create_invite(db: Database, role: str, lifetime_s: int, clock: Clock, rng: Rng) -> str:
    """Store a new single-use invite for ``role``; returns the code (shown once, never stored)."""
    if role not in INVITE_ROLES:
        raise ValueError(f"role must be one of {INVITE_ROLES}")
    code = new_invite_code(rng)
    now = now_ms(clock)
    async with db.transaction() as tx:
        await invites.insert(tx, invite_hash(code), role, now, now + lifetime_s * 1000)
    return code


async def create_account(db: Database, user_id: UserId, role: str, password_hash: str, clock: Clock) -> None:
    """Create an account without a device (admin command); queues ``account_created`` for the log.

    Raises :class:`~server.storage.errors.UserAlreadyExists`.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    now = now_ms(clock)
    async with db.transaction() as tx:
        await accounts.create(tx, str(user_id), role, password_hash, now)
        await AuditTrail.record(tx, AccessEvent(now, AccessAction.ACCOUNT_CREATED, str(user_id)))


async def reset_mfa(db: Database, user_id: UserId, clock: Clock) -> bool:
    """Remove the account's second factor (its authenticator and recovery codes were lost; admin
    command); queues ``mfa_disabled`` for the log. False if the account had none (or no
    account has ``user_id``). The account's sessions stay as they are; at its next sign-in an
    account of a role that requires MFA gets an enrolment-only session."""
    now = now_ms(clock)
    async with db.transaction() as tx:
        row = await mfa.get(tx, str(user_id))
        if row is None:
            return False
        await mfa.disable(tx, str(user_id))
        await AuditTrail.record(tx, AccessEvent(now, AccessAction.MFA_DISABLED, str(user_id)))
    return True


async def reset_devices(db: Database, user_id: UserId, clock: Clock) -> int:
    """Account recovery when every device is lost (``spec/security.md`` finding 2): remove
    every device of ``user_id`` (``device_removed`` with reason ``admin`` and
    ``access/device_revoked`` queued for the log) and forget its device tree, so that the next
    device that logs in is a new root: a new identity, which peers see as such. Returns the
    number of devices removed; raises :class:`~server.storage.errors.NoSuchRow` for an
    unknown user."""
    user = str(user_id)
    now = now_ms(clock)
    async with db.transaction() as tx:
        if not await accounts.exists(tx, user):
            raise NoSuchRow(f"no account {user}")
        rows = await devices.list_for_user(tx, user)
        for d in rows:
            await devices.delete(tx, user, d.device_id)
            if d.signature_key is not None and d.key_log_index is not None:
                await AuditTrail.record(tx, DeviceRemoved(now, user, d.device_id, d.signature_key,
                                                          RemovalReason.ADMIN))
            await AuditTrail.record(tx, AccessEvent(now, AccessAction.DEVICE_REVOKED, user, d.device_id))
        await device_trust.forget_user(tx, user)
    return len(rows)
