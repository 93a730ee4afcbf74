"""Devices of an account: list, remove, register keys, and the public key list of a user.

Device keys: a device registers its Ed25519 signature key and its MLS
credential once, self-signed (:func:`protocol.audit.device_registration_message`).
The registration is appended to the transparency log (``device_added``)
before it is stored and answered, so no key is usable before it is in the
log. Removal deletes the device, its tokens and KeyPackages and records
``device_removed`` (if it had keys) and ``access/device_revoked`` in the same
transaction (via the audit outbox). Registrations and removals are serialized
by one lock, so the log and the database never disagree about which happened first.

Approval (``spec/client-server.md`` 4.6): the device that registered the account is
its root; a device created by login is pending until an approved device of the same user
signs its key (:meth:`Devices.approve`, logged as ``device_approved``). Pending devices are
in no device list (:meth:`Devices.user_devices`), and may remove only themselves. Each listed device carries its approval chain (log indexes).

Errors: :class:`DeviceKeysInvalid`, :class:`Conflict`, :class:`NotFound`, and the codes of
:mod:`protocol.device_approval`.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

import aiosqlite

from crypto.errors import CryptoError
from crypto.mls.credential import Credential, CredentialType
from protocol.api import (
    DeviceInfo,
    DeviceKeys,
    DeviceKeysRequest,
    DevicesResponse,
    UserDevicesResponse,
)
from protocol.audit import (
    AccessAction,
    AccessEvent,
    DeviceAdded,
    DeviceApproved,
    DeviceRemoved,
    RemovalReason,
)
from protocol.device_approval import (
    APPROVAL_SKEW_MS,
    ApprovalInvalid,
    ApproveDeviceRequest,
    ApproveDeviceResponse,
    ApproverNotApproved,
    DeviceNotPending,
    PendingDevice,
    PendingDevicesResponse,
)
from protocol.errors import Conflict, DeviceKeysInvalid, NotFound
from protocol.ids import DeviceId, UserId, device_identity
from server.storage import AlreadyExists, Database, NoSuchRow, accounts, device_trust, devices

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


def _info(d: devices.Device, trust: device_trust.Trust | None) -> DeviceInfo:
    pending = trust is None or not trust.state.active
    return DeviceInfo(DeviceId(d.device_id), d.created_at, d.last_seen,
                      d.signature_key, d.credential, d.key_log_index, pending)


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
            trust = await device_trust.for_user(conn, str(session.user_id))
        return DevicesResponse(tuple(_info(d, trust.get(d.device_id)) for d in rows))

    async def user_devices(self, user: UserId) -> UserDevicesResponse:
        """Approved devices of ``user`` whose keys are in the log, each with its approval
        chain and the openings of its registration and of each chain entry (the public log
        holds commitments only); :class:`NotFound` for an unknown user. Pending devices are
        left out. The client route asks :meth:`check_contact` first."""
        async with self.db.read() as conn:
            if not await accounts.exists(conn, str(user)):
                raise NotFound(NOT_CONTACTABLE)
            rows = await devices.list_for_user(conn, str(user))
            trust = await device_trust.for_user(conn, str(user))
        keys = []
        for d in rows:
            chain = device_trust.chain(trust, d.device_id)
            if d.signature_key is not None and d.key_log_index is not None and chain is not None:
                keys.append(DeviceKeys(
                    DeviceId(d.device_id), d.signature_key, d.credential, d.key_log_index,
                    await self._opening(d.key_log_index), chain,
                    tuple([await self._opening(i) for i in chain])))
        return UserDevicesResponse(user, tuple(keys))

    async def _opening(self, index: int) -> bytes:
        return (await self.audit.log.opening(index)).to_bytes()

    async def pending(self, session: Session) -> PendingDevicesResponse:
        """The caller's devices that registered keys and wait for approval."""
        user = str(session.user_id)
        async with self.db.read() as conn:
            rows = await devices.list_for_user(conn, user)
            trust = await device_trust.for_user(conn, user)
        out = []
        for d in rows:
            t = trust.get(d.device_id)
            if (t is None or not t.state.active) and d.signature_key is not None \
                    and d.key_log_index is not None:
                out.append(PendingDevice(DeviceId(d.device_id), d.signature_key, d.key_log_index,
                                         d.created_at))
        return PendingDevicesResponse(tuple(out))

    async def _require_active(self, conn: aiosqlite.Connection, user: str, device: str,
                              keys: bool = True) -> devices.Device:
        """The calling device, if it is its account's root or approved (and registered its
        keys, with ``keys``); else :class:`ApproverNotApproved`."""
        me = await devices.get(conn, user, device)
        trust = await device_trust.get(conn, user, device)
        if me is None or (keys and me.signature_key is None) or trust is None \
                or not trust.state.active:
            raise ApproverNotApproved("only an approved device of this user may do this")
        return me

    async def approve(self, session: Session, device_id: DeviceId,
                      req: ApproveDeviceRequest) -> ApproveDeviceResponse:
        """Approve one of the caller's pending devices with the caller's signature: checked
        against the caller's registered key, logged (``device_approved``), then stored."""
        user, approver, device = str(session.user_id), str(session.device_id), str(device_id)
        async with self._lock:
            async with self.db.read() as conn:
                me = await self._require_active(conn, user, approver)
                target = await devices.get(conn, user, device)
                trust = await device_trust.get(conn, user, device)
            if target is None:
                raise NotFound("no such device")
            if trust is not None and trust.state.active:
                raise DeviceNotPending("this device is already approved")
            if target.signature_key is None or target.key_log_index is None:
                raise DeviceNotPending("this device has not registered its keys yet")
            if abs(req.time - now_ms(self.clock)) > APPROVAL_SKEW_MS:
                raise ApprovalInvalid("the approval's time is too far from the server's clock")
            entry = DeviceApproved(req.time, user, device, target.signature_key, approver,
                                   req.signature)
            try:
                entry.verify_signature(me.signature_key or b"")
            except CryptoError:
                raise ApprovalInvalid("the approval is not signed by the approver's key") from None
            index = await self.audit.append_now(entry)
            async with self.db.transaction() as tx:
                if trust is None:
                    await device_trust.set_added(tx, user, device, target.signature_key,
                                                 target.key_log_index)
                await device_trust.approve(tx, user, device, approver, index)
        return ApproveDeviceResponse(index)

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
                    await device_trust.set_added(tx, user, device, req.signature_key, index)
            except NoSuchRow:
                raise NotFound("device removed") from None
            except AlreadyExists as exc:
                raise Conflict(str(exc)) from None
        return index

    async def remove(self, session: Session, device_id: DeviceId,
                     reason: RemovalReason = RemovalReason.SELF) -> None:
        """Remove one of the caller's devices (tokens and KeyPackages go with it). A pending
        device may remove only itself (:class:`ApproverNotApproved`); removing a pending
        device is how its owner rejects it."""
        user = str(session.user_id)
        async with self._lock:
            if device_id != session.device_id:
                async with self.db.read() as conn:
                    await self._require_active(conn, user, str(session.device_id), keys=False)
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
