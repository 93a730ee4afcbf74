"""Who may open which entry of the private log, and auditor credentials.

The public log holds sealed entries (:mod:`protocol.audit_seal`); the opening of
entry ``index`` (opened fields and salts) goes to:

- the entry's subject (the user its class's ``SUBJECT`` field names: a user's own
  devices, logins and logouts, consents, the room events they sent);
- for ``OPENED_BY`` ``contacts`` (device entries): a user who may list the subject's
  devices (:meth:`server.services.devices.Devices.check_contact`, finding 12);
- for ``room_members`` (room events): a current or past member of the entry's room;
- for ``users`` (policies): any signed-in user;
- an auditor holding a valid credential (``confide admin auditor add``); each such
  read is appended to the log first, as an ``auditor_read`` entry naming the
  auditor and the index by commitment.

Everyone else, and anyone asking for an index beyond the log, gets the one
:class:`~protocol.errors.NotFound` (:data:`protocol.log_openings.NOT_OPENABLE`).
Raises :class:`~protocol.errors.Unauthorized` for an unknown or revoked auditor
credential.
"""

from __future__ import annotations

import base64
import hashlib

from protocol.audit import AuditEntry, AuditorRead, OpenedBy
from protocol.audit_seal import Opening
from protocol.errors import NotFound, Unauthorized
from protocol.ids import UserId
from protocol.log_openings import MAX_OWN_ENTRIES, NOT_OPENABLE, OwnEntriesResponse
from server.storage import Database, log_privacy

from .audit import AuditTrail
from .clock import Clock, now_ms
from .devices import Devices
from .sessions import Session

__all__ = ["LogOpenings", "new_auditor_token", "auditor_token_hash"]

_MEMBER = "SELECT 1 FROM room_members WHERE room_id = ? AND user_id = ? LIMIT 1"


def new_auditor_token(random32: bytes) -> str:
    """An auditor credential: 43 base64url characters of 32 random bytes."""
    return base64.urlsafe_b64encode(random32).decode().rstrip("=")


def auditor_token_hash(token: str) -> bytes:
    return hashlib.sha256(b"confide.auditor.v1\x00" + token.encode()).digest()


class LogOpenings:
    def __init__(self, db: Database, audit: AuditTrail, devices: Devices, clock: Clock) -> None:
        self.db = db
        self.audit = audit
        self.log = audit.log
        self.devices = devices
        self.clock = clock

    async def auditor(self, authorization: str) -> str:
        """The auditor named by an ``Authorization: ConfideAuditor <token>`` header."""
        _, _, token = authorization.partition(" ")
        if not 1 <= len(token) <= 64:
            raise Unauthorized("expected Authorization: ConfideAuditor <credential>")
        async with self.db.read() as conn:
            name = await log_privacy.auditor_by_token(conn, auditor_token_hash(token))
        if name is None:
            raise Unauthorized("unknown or revoked auditor credential")
        return name

    async def open_for_auditor(self, name: str, index: int) -> Opening:
        """The opening of ``index``, after the read is in the log."""
        if await self.log.opened_entry(index) is None:
            raise NotFound(NOT_OPENABLE)
        await self.audit.append_now(AuditorRead(now_ms(self.clock), name, index))
        return await self.log.opening(index)

    async def open_for_user(self, session: Session, index: int) -> Opening:
        entry = await self.log.opened_entry(index)
        if entry is None or not await self._may_open(session.user_id, entry):
            raise NotFound(NOT_OPENABLE)
        return await self.log.opening(index)

    async def _may_open(self, caller: UserId, entry: AuditEntry) -> bool:
        subject = getattr(entry, entry.SUBJECT) if entry.SUBJECT else None
        if subject is not None and subject == str(caller):
            return True
        rule = entry.OPENED_BY
        if rule == OpenedBy.USERS:
            return True
        if rule == OpenedBy.CONTACTS and subject is not None:
            try:
                await self.devices.check_contact(caller, UserId.parse(subject))
            except NotFound:
                return False
            return True
        if rule == OpenedBy.ROOM_MEMBERS:
            room = getattr(entry, "room", None)
            async with self.db.read() as conn, conn.execute(_MEMBER, (room, str(caller))) as cur:
                return await cur.fetchone() is not None
        return False

    async def own_entries(self, session: Session, start: int, limit: int) -> OwnEntriesResponse:
        """Indexes of the entries naming the caller's user, from ``start``."""
        limit = max(1, min(limit, MAX_OWN_ENTRIES))
        found = await self.log.own_entries(str(session.user_id), start, limit)
        more = len(found) == limit
        return OwnEntriesResponse(tuple(found), found[-1] + 1 if more else None)
