"""Device keys, KeyPackages and peer-key verification.

* :meth:`Keys.register_device_keys`: ``PUT /keys/device`` with the device's
  Ed25519 key, its basic credential ``@user:server/DEVICE`` and the self-signature
  of ``protocol.audit.device_registration_message``; pins the server's
  transparency-log key (``/_confide/log/v1/vkey``) on first use.
* :meth:`Keys.top_up`: keeps at least ``threshold`` one-time KeyPackages on the
  server (uploads up to ``batch``) and a last-resort one. Privates are stored in
  the profile *before* the upload, by KeyPackageRef.
* :meth:`Keys.for_welcome`: the stored KeyPackage a Welcome is addressed to.
* :meth:`Keys.claim`: one KeyPackage per device of a user (``POST /keys/claim``),
  each checked against the device's registered keys and its registration's
  inclusion in the log (:meth:`Keys.verify_device`) before it is used. A device of
  another server is checked against *that* server's log, relayed by our server
  (``/federation/{server}/_confide/log/v1/...``); its log key is pinned on first use.
"""

from __future__ import annotations

import asyncio

import aiohttp

from client.audit import AuditFailure, HttpSource, fetch_proof, verify_device_inclusion
from crypto.errors import CryptoError
from crypto.mls import Credential, KeyPackage, KeyPackagePrivate, MLSMessage, Welcome, get_suite
from crypto.mls.key_package_gen import generate_key_package, key_package_ref
from crypto.note import parse_vkey
from crypto.primitives import ed25519_public_key, ed25519_sign
from crypto.rng import Rng, system_rng
from protocol.api import (
    CLIENT_PREFIX,
    ClaimRequest,
    ClaimResponse,
    DeviceKeys,
    DeviceKeysRequest,
    DeviceKeysResponse,
    KeyPackageCountResponse,
    KeyPackageUploadRequest,
    UserDevicesResponse,
)
from protocol.audit import device_registration_message
from protocol.ids import RoomId, UserId

from .errors import VerificationFailed
from .http import Http, quote_path
from .store import Store, StoredKeyPackage

__all__ = ["Keys", "SUITE", "device_identity", "split_identity"]

#: New rooms and KeyPackages use cipher suite 3 (X25519, ChaCha20-Poly1305, SHA-256, Ed25519).
SUITE = 3


def device_identity(user_id: str, device_id: str) -> bytes:
    return f"{user_id}/{device_id}".encode()


def split_identity(identity: bytes) -> tuple[str, str]:
    """``(user_id, device_id)`` of a credential identity; raises VerificationFailed."""
    try:
        user, _, device = identity.decode().rpartition("/")
    except UnicodeDecodeError:
        raise VerificationFailed("a credential identity is not UTF-8") from None
    if not user.startswith("@") or ":" not in user or not device:
        raise VerificationFailed(f"credential identity {identity!r} is not @user:server/DEVICE")
    return user, device


class Keys:
    def __init__(self, http: Http, store: Store, rng: Rng = system_rng, *,
                 batch: int = 20, threshold: int = 10) -> None:
        self.http = http
        self.store = store
        self.rng = rng
        self.batch = batch
        self.threshold = threshold

    # -- own device ----------------------------------------------------------------------

    async def register_device_keys(self) -> int:
        """Register this device's keys; returns the log index. Idempotent."""
        acct = self.store.account()
        if acct.log_vkey is None:
            acct.log_vkey = (await self.http.get_raw("/_confide/log/v1/vkey")).decode().strip()
            self.store.save_account(acct)
        pk = ed25519_public_key(acct.signature_seed)
        cred = Credential.basic(device_identity(acct.user_id, acct.device_id)).to_bytes()
        sig = ed25519_sign(acct.signature_seed,
                           device_registration_message(acct.user_id, acct.device_id, pk, cred))
        out = await self.http.request("PUT", "/keys/device", DeviceKeysRequest(pk, cred, sig),
                                      DeviceKeysResponse)
        acct.log_index = out.log_index
        acct.keys_registered = True
        self.store.save_account(acct)
        return acct.log_index

    def _generate(self, last_resort: bool) -> tuple[bytes, str, StoredKeyPackage]:
        acct = self.store.account()
        suite = get_suite(SUITE)
        kp, priv = generate_key_package(suite, device_identity(acct.user_id, acct.device_id),
                                        self.rng, last_resort=last_resort,
                                        signature_priv=acct.signature_seed)
        ref = key_package_ref(suite, kp).hex()
        stored = StoredKeyPackage(kp.to_bytes(), priv.init_priv, priv.encryption_priv, last_resort)
        return MLSMessage(kp).to_bytes(), ref, stored

    async def count(self) -> KeyPackageCountResponse:
        return await self.http.request("GET", "/keys/packages/count", None, KeyPackageCountResponse)

    async def top_up(self, *, force: bool = False) -> KeyPackageCountResponse:
        """Upload KeyPackages when the server holds fewer than ``threshold`` one-time ones
        (or ``force``); always with a fresh last-resort one. Returns the count."""
        count = await self.count()
        if not force and count.one_time >= self.threshold and count.last_resort:
            return count
        n = max(0, min(100, self.batch - count.one_time))
        made = [self._generate(False) for _ in range(n)]
        last = self._generate(True)
        kps = self.store.key_packages()
        # A new last-resort package replaces the old one on the server.
        kps = {r: v for r, v in kps.items() if not v.last_resort}
        for _, ref, stored in (*made, last):
            kps[ref] = stored
        self.store.save_key_packages(kps)
        upload = KeyPackageUploadRequest(tuple(m for m, _, _ in made), last[0])
        return await self.http.request("POST", "/keys/packages", upload, KeyPackageCountResponse)

    def for_welcome(self, welcome: Welcome) -> tuple[str, KeyPackage, KeyPackagePrivate] | None:
        """The stored KeyPackage (ref, package, privates) named by ``welcome``, if any."""
        acct = self.store.account()
        kps = self.store.key_packages()
        for secret in welcome.secrets:
            stored = kps.get(secret.new_member.hex())
            if stored is not None:
                kp = KeyPackage.from_bytes(stored.key_package)
                return (secret.new_member.hex(), kp,
                        KeyPackagePrivate(stored.init_priv, stored.encryption_priv, acct.signature_seed))
        return None

    def consume(self, ref: str) -> None:
        """Forget a one-time KeyPackage once a Welcome used it (a last-resort one stays)."""
        kps = self.store.key_packages()
        if ref in kps and not kps[ref].last_resort:
            del kps[ref]
            self.store.save_key_packages(kps)

    # -- peers ---------------------------------------------------------------------------

    async def user_devices(self, user_id: str) -> tuple[DeviceKeys, ...]:
        """The devices of ``user_id`` with registered keys, as its server lists them."""
        out = await self.http.request("GET", f"/users/{quote_path(user_id)}/devices", None,
                                      UserDevicesResponse)
        return out.devices

    async def verify_device(self, user_id: str, device_id: str, signature_key: bytes,
                            log_index: int | None = None, opening: bytes | None = None,
                            credential: bytes | None = None) -> None:
        """Check that (user, device, key) is registered in the server's log before trusting
        it: fetch the registration's inclusion proof, verify it against the pinned log key,
        and check the registration's opening (from the device list) against the proven
        entry's commitments (user, device, key, credential, salts). Results are cached in
        the profile. Raises :class:`VerificationFailed`."""
        identity = device_identity(user_id, device_id).decode()
        if self.store.verified().get(identity) == signature_key:
            return
        acct = self.store.account()
        server = user_id.split(":", 1)[1]
        base, vkey = self.http.base_url, acct.log_vkey
        if server != acct.user_id.split(":", 1)[1]:
            # Another server's device: its own log, relayed by our server; its key pinned on first use.
            base = f"{self.http.base_url}{CLIENT_PREFIX}/federation/{server}"
            vkey = await self._remote_log_key(server, base)
        if log_index is None or opening is None:
            match = [d for d in await self.user_devices(user_id) if str(d.device_id) == device_id]
            if not match:
                raise VerificationFailed(f"{identity} is not a registered device")
            if match[0].signature_key != signature_key:
                raise VerificationFailed(f"{identity} uses a key other than the registered one")
            log_index = match[0].log_index if log_index is None else log_index
            opening = match[0].opening
            credential = match[0].credential if credential is None else credential
        if vkey is None:
            raise VerificationFailed("no transparency-log key pinned in this profile")
        try:
            proof = await fetch_proof(self.http.session, base, str(log_index), self.http.token)
            verify_device_inclusion(proof, parse_vkey(vkey), user_id, device_id, signature_key,
                                    opening, credential)
        except (AuditFailure, CryptoError) as exc:
            raise VerificationFailed(f"{identity}: {exc}") from None
        self.store.add_verified(identity, signature_key)

    async def _remote_log_key(self, server: str, base: str) -> str:
        """The log key of ``server``, pinned in the profile the first time it is fetched."""
        pins = self.store.verified()
        pinned = pins.get(f"log-vkey:{server}")
        if pinned is not None:
            return pinned.decode()
        try:
            raw = await HttpSource(self.http.session, base, self.http.token).get("vkey")
            if raw is None:
                raise AuditFailure("no vkey")
            vkey = raw.decode().strip()
            parse_vkey(vkey)
        except (AuditFailure, CryptoError, UnicodeDecodeError, aiohttp.ClientError) as exc:
            raise VerificationFailed(f"the log key of {server} is not available: {exc}") from None
        self.store.add_verified(f"log-vkey:{server}", vkey.encode())
        return vkey

    async def claim(self, user_id: str, room_id: str | None = None) -> list[tuple[str, KeyPackage]]:
        """One verified KeyPackage per device of ``user_id``: ``[(device_id, KeyPackage)]``;
        with ``room_id`` the claim is for that room and goes through its hub.

        Raises :class:`~client.sdk.errors.ServerError` (``key_package_exhausted``, ``not_found``) and
        :class:`VerificationFailed` (a package whose key or credential is not the
        device's registered one, or a registration not proven in the log)."""
        body = ClaimRequest(UserId.parse(user_id), RoomId.parse(room_id) if room_id is not None else None)
        claimed = await self.http.request("POST", "/keys/claim", body, ClaimResponse)
        registered = {str(d.device_id): d for d in await self.user_devices(user_id)}
        out: list[tuple[str, KeyPackage]] = []
        for item in claimed.key_packages:
            device = str(item.device_id)
            try:
                msg = MLSMessage.from_bytes(item.key_package)
            except CryptoError:
                raise VerificationFailed(f"the KeyPackage of {device} does not decode") from None
            kp = msg.body
            if not isinstance(kp, KeyPackage):
                raise VerificationFailed(f"the claimed item of {device} is not a KeyPackage")
            reg = registered.get(device)
            leaf = kp.leaf_node
            if reg is None or leaf.signature_key != reg.signature_key \
                    or leaf.credential.to_bytes() != reg.credential \
                    or leaf.credential.identity != device_identity(user_id, device):
                raise VerificationFailed(f"the KeyPackage of {user_id}/{device} is not bound to "
                                         "the device's registered keys")
            out.append((device, kp))
        await asyncio.gather(*(self.verify_device(user_id, d, kp.leaf_node.signature_key,
                                                  registered[d].log_index, registered[d].opening,
                                                  registered[d].credential) for d, kp in out))
        return out
