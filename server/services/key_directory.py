"""The key directory: devices upload KeyPackages, others claim one per device of a user.

Errors: :class:`DeviceKeysMissing` (upload before registering device keys),
:class:`KeyPackageInvalid`, :class:`KeyPackageLimit`, :class:`NotFound`
(unknown user), :class:`KeyPackageExhausted` (no device of the user has one).

A claim runs in one write transaction: one-time packages are deleted as they
are handed out, so each goes to exactly one claimer even under concurrent
claims; a device without one gets its last-resort package (kept); expired
ones are never handed out.
"""

from __future__ import annotations

from protocol.api import (
    ClaimedKeyPackage,
    ClaimResponse,
    KeyPackageCountResponse,
    KeyPackageUploadRequest,
)
from protocol.errors import (
    DeviceKeysMissing,
    KeyPackageExhausted,
    KeyPackageInvalid,
    KeyPackageLimit,
    NotFound,
)
from protocol.ids import DeviceId, UserId
from server.storage import AlreadyExists, Database, accounts, device_trust, devices, key_packages

from .clock import Clock, now_ms, now_s
from .key_package_check import check_key_package
from .sessions import Session

__all__ = ["KeyDirectory"]


class KeyDirectory:
    def __init__(self, db: Database, max_one_time_per_device: int, clock: Clock) -> None:
        self.db = db
        self.max_one_time = max_one_time_per_device
        self.clock = clock

    async def upload(self, session: Session, req: KeyPackageUploadRequest) -> KeyPackageCountResponse:
        """Validate and store the batch; the new last-resort package replaces the old one."""
        user, device = str(session.user_id), str(session.device_id)
        async with self.db.read() as conn:
            row = await devices.get(conn, user, device)
        if row is None or row.signature_key is None or row.credential is None or row.key_log_index is None:
            raise DeviceKeysMissing("register the device's keys before uploading KeyPackages")
        now = now_s(self.clock)
        batch = [
            check_key_package(data, signature_key=row.signature_key, credential=row.credential,
                              last_resort=last, now_s=now)
            for data, last in [*((d, False) for d in req.one_time), (req.last_resort, True)]
        ]
        if len({kp.ref for kp in batch}) != len(batch):
            raise KeyPackageInvalid("the batch holds the same KeyPackage twice")
        async with self.db.transaction() as tx:
            one_time, _ = await key_packages.count(tx, user, device, now)
            if one_time + len(req.one_time) > self.max_one_time:
                raise KeyPackageLimit(
                    f"at most {self.max_one_time} one-time KeyPackages per device; {one_time} stored")
            try:
                await key_packages.store_batch(tx, user, device, batch, now_ms(self.clock))
            except AlreadyExists:
                raise KeyPackageInvalid("a KeyPackage of the batch was uploaded before") from None
            one_time, last_resort = await key_packages.count(tx, user, device, now)
        return KeyPackageCountResponse(one_time, last_resort)

    async def count(self, session: Session) -> KeyPackageCountResponse:
        async with self.db.read() as conn:
            one_time, last_resort = await key_packages.count(
                conn, str(session.user_id), str(session.device_id), now_s(self.clock))
        return KeyPackageCountResponse(one_time, last_resort)

    async def claim(self, user: UserId) -> ClaimResponse:
        """One KeyPackage per approved device of ``user`` that registered keys (see the module
        docstring); a pending device's packages are never handed out."""
        now = now_s(self.clock)
        claimed: list[ClaimedKeyPackage] = []
        missing: list[DeviceId] = []
        async with self.db.transaction() as tx:
            if not await accounts.exists(tx, str(user)):
                raise NotFound("no such user")
            trust = await device_trust.for_user(tx, str(user))
            for d in await devices.list_for_user(tx, str(user)):
                if d.key_log_index is None:
                    continue  # keys not registered: not a member-capable device yet
                if device_trust.chain(trust, d.device_id) is None:
                    continue  # pending approval by another device of the user
                kp = await key_packages.claim_one(tx, str(user), d.device_id, now)
                if kp is None:
                    missing.append(DeviceId(d.device_id))
                else:
                    claimed.append(ClaimedKeyPackage(DeviceId(d.device_id), kp.data, kp.last_resort))
        if not claimed:
            raise KeyPackageExhausted("no device of this user has a KeyPackage to hand out")
        return ClaimResponse(user, tuple(claimed), tuple(missing))
