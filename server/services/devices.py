"""Devices of an account: list, remove, register keys, and the public key list of a user.

Device keys: a device registers its Ed25519 signature key and its MLS
credential once, self-signed (:func:`protocol.audit.device_registration_message`).
The registration is appended to the transparency log (``device_added``)
before it is stored and answered, so no key is usable before it is in the
log. Removal deletes the device, its tokens and KeyPackages and records
``device_removed`` (if it had keys) and ``access/device_revoked`` in the same
transaction (via the audit outbox). Registrations and removals are serialized
by one lock, so the log and the database never disagree about which happened first.

Errors: :class:`DeviceKeysInvalid`, :class:`Conflict`, :class:`NotFound`.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from crypto.errors import CryptoError
from crypto.mls.credential import Credential, CredentialType
from protocol.api import (
    DeviceInfo,
    DeviceKeys,
    DeviceKeysRequest,
    DevicesResponse,
    UserDevicesResponse,
)
from protocol.audit import AccessAction, AccessEvent, DeviceAdded, DeviceRemoved, RemovalReason
from protocol.errors import Conflict, DeviceKeysInvalid, NotFound
from protocol.ids import DeviceId, UserId, device_identity
from server.storage import AlreadyExists, Database, NoSuchRow, accounts, devices

from .audit import AuditTrail
from .clock import Clock, now_ms
from .sessions import Session

__all__ = ["Devices", "expected_credential", "CLAIM_GRANT_TTL"]

#: Seconds after a claim of a user's KeyPackages during which the claimer may list that
#: user's devices (to check the claimed packages and address the Welcome).
CLAIM_GRANT_TTL = 3600

_SHARED_ROOM = (
    "SELECT 1 FROM room_members a JOIN room_members b ON a.room_id = b.room_id "
    "WHERE a.user_id = ? AND b.user_id = ? LIMIT 1")

#: The one answer for a user who does not exist and one the caller may not contact.
NOT_CONTACTABLE = "no such user, or not one you may contact"


def expected_credential(user: UserId, device: DeviceId) -> bytes:
    """The encoded basic MLS credential a device must register: identity ``@user:server/DEVICE``."""
    return Credential(CredentialType.BASIC, identity=device_identity(user, device)).to_bytes()


def _info(d: devices.Device) -> DeviceInfo:
    return DeviceInfo(DeviceId(d.device_id), d.display_name, d.created_at, d.last_seen,
                      d.signature_key, d.credential, d.key_log_index)


class Devices:
    def __init__(self, db: Database, audit: AuditTrail, clock: Clock) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self._lock = asyncio.Lock()
        self._claims: OrderedDict[tuple[str, str], float] = OrderedDict()  # (claimer, user) -> when

    def note_claim(self, claimer: UserId, user: UserId, max_grants: int = 100_000) -> None:
        """``claimer`` just claimed KeyPackages of ``user``: it may list ``user``'s devices
        for :data:`CLAIM_GRANT_TTL` seconds (in memory; bounded, oldest dropped first)."""
        key = (str(claimer), str(user))
        self._claims[key] = self.clock()
        self._claims.move_to_end(key)
        while len(self._claims) > max_grants:
            self._claims.popitem(last=False)

    async def check_contact(self, caller: UserId, user: UserId) -> None:
        """Raises :class:`NotFound` unless ``caller`` may see ``user``'s device list: ``user``
        is the caller, or the two are or were members of one room this server knows, or the
        caller claimed ``user``'s KeyPackages in the last :data:`CLAIM_GRANT_TTL` seconds.
        An unknown user gets the same answer, after the same query (``spec/security.md``)."""
        if caller == user:
            return
        async with self.db.read() as conn, conn.execute(_SHARED_ROOM, (str(caller), str(user))) as cur:
            shared = await cur.fetchone() is not None
        claimed = self._claims.get((str(caller), str(user)))
        if shared or (claimed is not None and claimed > self.clock() - CLAIM_GRANT_TTL):
            return
        raise NotFound(NOT_CONTACTABLE)

    async def list(self, session: Session) -> DevicesResponse:
        async with self.db.read() as conn:
            rows = await devices.list_for_user(conn, str(session.user_id))
        return DevicesResponse(tuple(_info(d) for d in rows))

    async def user_devices(self, user: UserId) -> UserDevicesResponse:
        """Devices of ``user`` whose keys are in the log, each with the opening of its
        registration entry (the public log holds commitments only); :class:`NotFound` for an
        unknown user. The client route asks :meth:`check_contact` first."""
        async with self.db.read() as conn:
            if not await accounts.exists(conn, str(user)):
                raise NotFound(NOT_CONTACTABLE)
            rows = await devices.list_for_user(conn, str(user))
        keys = tuple([
            DeviceKeys(DeviceId(d.device_id), d.signature_key, d.credential, d.key_log_index,
                       (await self.audit.log.opening(d.key_log_index)).to_bytes())
            for d in rows if d.signature_key is not None and d.key_log_index is not None
        ])
        return UserDevicesResponse(user, keys)

    async def register_keys(self, session: Session, req: DeviceKeysRequest) -> int:
        """Log, then store, the calling device's keys; returns the log index.

        Registering the same keys again returns the first index; different
        keys for a device that has keys raise :class:`Conflict`.
        """
        user, device = str(session.user_id), str(session.device_id)
        if req.credential != expected_credential(session.user_id, session.device_id):
            raise DeviceKeysInvalid("credential must be basic with identity @user:server/DEVICE")
        now = now_ms(self.clock)
        entry = DeviceAdded(now, user, device, req.signature_key, req.credential, req.signature)
        try:
            entry.verify_signature()
        except CryptoError:
            raise DeviceKeysInvalid("the registration is not signed by signature_key") from None
        async with self._lock:
            async with self.db.read() as conn:
                current = await devices.get(conn, user, device)
                taken = await devices.key_in_use(conn, req.signature_key)
            if current is None:
                raise NotFound("device removed")
            if current.signature_key is not None:
                if (current.signature_key, current.credential) == (req.signature_key, req.credential) \
                        and current.key_log_index is not None:
                    return current.key_log_index
                raise Conflict("this device already registered different keys")
            if taken:
                raise Conflict("another device registered this signature key")
            index = await self.audit.append_now(entry)
            try:
                async with self.db.transaction() as tx:
                    await devices.set_keys(tx, user, device, req.signature_key, req.credential, index)
            except NoSuchRow:
                raise NotFound("device removed") from None
            except AlreadyExists as exc:
                raise Conflict(str(exc)) from None
        return index

    async def remove(self, session: Session, device_id: DeviceId,
                     reason: RemovalReason = RemovalReason.SELF) -> None:
        """Remove one of the caller's devices (tokens and KeyPackages go with it)."""
        user = str(session.user_id)
        async with self._lock:
            async with self.db.transaction() as tx:
                device = await devices.get(tx, user, str(device_id))
                if device is None:
                    raise NotFound("no such device")
                await devices.delete(tx, user, str(device_id))
                now = now_ms(self.clock)
                if device.signature_key is not None and device.key_log_index is not None:
                    await self.audit.record(
                        tx, DeviceRemoved(now, user, str(device_id), device.signature_key, reason))
                await self.audit.record(
                    tx, AccessEvent(now, AccessAction.DEVICE_REVOKED, user, str(device_id)))
            await self.audit.flush()
