"""Access tokens and sessions: issue, authenticate (with idle expiry), revoke.

A token is 32 random bytes sent as unpadded base64url in
``Authorization: Bearer <token>``; only its SHA-256 is stored. A session
expires when unused for ``idle_timeout`` seconds. Use is recorded coarsely:
``last_used`` (and the device's ``last_seen``) are written only when older than
``touch_interval``, so authenticating costs no write on most requests, and
expiry is exact to within ``touch_interval``.

A token's scope is ``full`` or ``mfa_enrolment`` (an account whose role
requires a second factor and has none: spec/security.md, "MFA"); only
:meth:`Sessions.authenticate` with ``enrolment=True`` (the MFA enrolment routes,
whoami, logout) accepts the latter.

Errors: :class:`~protocol.errors.Unauthorized` for a missing, malformed,
unknown or expired token; :class:`~protocol.mfa.MfaEnrolmentRequired` for an
enrolment-only token anywhere else. An expiry is recorded in the log (``session_expired``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

import aiosqlite

from crypto.rng import Rng
from protocol.audit import AccessAction, AccessEvent
from protocol.errors import Unauthorized
from protocol.ids import DeviceId, UserId
from protocol.mfa import MfaEnrolmentRequired
from server.config import SessionPolicy
from server.storage import Database, devices, tokens

from .audit import AuditTrail
from .clock import Clock, now_ms

__all__ = ["Session", "Sessions", "TOKEN_BYTES", "hash_token", "parse_bearer"]

TOKEN_BYTES = 32


@dataclass(frozen=True)
class Session:
    """The authenticated caller: who, on which device, with which role."""

    user_id: UserId
    device_id: DeviceId
    role: str
    token_hash: bytes
    scope: str = tokens.FULL


def hash_token(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()


def parse_bearer(header: str | None) -> bytes:
    """The raw token from an ``Authorization`` header; raises :class:`Unauthorized`."""
    if header is None:
        raise Unauthorized("missing access token")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or len(value) != 43:
        raise Unauthorized("expected Authorization: Bearer <token>")
    try:
        raw = base64.urlsafe_b64decode(value + "=")
    except (binascii.Error, ValueError):
        raise Unauthorized("malformed access token") from None
    if len(raw) != TOKEN_BYTES or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != value:
        raise Unauthorized("malformed access token")
    return raw


class Sessions:
    def __init__(self, db: Database, audit: AuditTrail, policy: SessionPolicy, clock: Clock, rng: Rng) -> None:
        self.db = db
        self.audit = audit
        self.policy = policy
        self.clock = clock
        self.rng = rng

    async def issue(self, tx: aiosqlite.Connection, user_id: str, device_id: str,
                    scope: str = tokens.FULL) -> str:
        """Store a new token for the device in the caller's transaction; returns the token text."""
        raw = self.rng(TOKEN_BYTES)
        await tokens.insert(tx, hash_token(raw), user_id, device_id, now_ms(self.clock), scope)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    async def authenticate(self, authorization: str | None, *, enrolment: bool = False) -> Session:
        """The session of the ``Authorization`` header; raises :class:`Unauthorized`, or
        :class:`MfaEnrolmentRequired` for an enrolment-only token unless ``enrolment``."""
        token_hash = hash_token(parse_bearer(authorization))
        async with self.db.statement() as conn:
            row = await tokens.lookup(conn, token_hash)
        if row is None:
            raise Unauthorized("unknown access token")
        now = now_ms(self.clock)
        idle = now - row.last_used
        if idle > self.policy.idle_timeout * 1000:
            async with self.db.transaction() as tx:
                if await tokens.delete(tx, token_hash):
                    await self.audit.record(
                        tx, AccessEvent(now, AccessAction.SESSION_EXPIRED, row.user_id, row.device_id))
            await self.audit.flush()
            raise Unauthorized("session expired; log in again")
        if idle >= self.policy.touch_interval * 1000:
            async with self.db.transaction() as tx:
                await tokens.touch(tx, token_hash, now)
                await devices.touch(tx, row.user_id, row.device_id, now)
        if row.scope != tokens.FULL and not enrolment:
            raise MfaEnrolmentRequired(
                "this session may only enrol a second factor; set up MFA first")
        return Session(UserId.parse(row.user_id), DeviceId(row.device_id), row.role, token_hash,
                       row.scope)

    async def revoke(self, session: Session) -> None:
        """Delete the session's token and record the logout."""
        async with self.db.transaction() as tx:
            if await tokens.delete(tx, session.token_hash):
                await self.audit.record(tx, AccessEvent(
                    now_ms(self.clock), AccessAction.LOGOUT, str(session.user_id), str(session.device_id)))
        await self.audit.flush()
