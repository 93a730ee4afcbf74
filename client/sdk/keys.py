"""Device keys, KeyPackages and peer-key verification.

* :meth:`Keys.register_device_keys`: ``PUT /keys/device`` with the device's
  Ed25519 key, its basic credential ``@user:server/DEVICE`` and the self-signature
  of ``protocol.audit.device_registration_message``. The server's log key is the one
  of the trust document the invite's anchor named (:mod:`protocol.trust`), never
  one the server serves on its own.
* :meth:`Keys.top_up`: keeps at least ``threshold`` one-time KeyPackages on the
  server (uploads up to ``batch``) and a last-resort one. Privates are stored in
  the profile *before* the upload, by KeyPackageRef.
* :meth:`Keys.for_welcome`: the stored KeyPackage a Welcome is addressed to.
* :meth:`Keys.claim`: one KeyPackage per device of a user (``POST /keys/claim``),
  each checked against the device's registered keys and its registration's
  inclusion in the log, opened with the opening the device list carries (the log
  holds sealed entries; :meth:`Keys.verify_device`) before it is used, against a
  checkpoint that extends the last one this device accepted and carries the witness
  quorum of the trust document (:mod:`.logview`). A device of another server is checked
  against *that* server's log, relayed by our server
  (``/federation/{server}/_confide/log/v1/...``), under the log key the trust document
  lists for that server, else the one our server attests in a statement signed by its
  anchored log key (``GET /federation/{server}/log_key``), pinned in the profile and
  never replaced. A key that merely came through the relay is never used.
* :meth:`Keys.verify_device_approved`: the device's approval chain back to its user's
  pinned root (:mod:`.device_trust`); :meth:`Keys.verify_device` and :meth:`Keys.claim`
  refuse a device without one (a claim leaves it out, in :attr:`Keys.refused`).
"""

from __future__ import annotations

import asyncio

from client.audit import AuditFailure, verify_device_inclusion, verify_tlog_proof
from crypto.errors import CryptoError
from crypto.mls import Credential, KeyPackage, KeyPackagePrivate, MLSMessage, Welcome, get_suite
from crypto.mls.key_package_gen import generate_key_package, key_package_ref
from crypto.note import open_note, parse_vkey
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
from protocol.audit import AuditEntry, device_registration_message
from protocol.audit_seal import decode_opening
from protocol.ids import RoomId, UserId
from protocol.trust import TrustDocument, parse_peer_log_key, parse_trust_document

from .device_trust import NewIdentity, check_approval_chain, device_entries, root_pin_name
from .errors import LogInconsistent, ServerError, TransportError, VerificationFailed
from .http import Http, quote_path
from .log_openings import fetch_opening
from .logview import LogView
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
        self.logs = LogView(http, store)
        #: Devices the last :meth:`claim` left out: ``(identity, reason)``.
        self.refused: list[tuple[str, str]] = []

    def trust(self) -> TrustDocument:
        """The trust document this profile was anchored to; VerificationFailed without one."""
        raw = self.store.account().trust_document
        if raw is None:
            raise VerificationFailed("this profile has no trust anchor: register from an invite "
                                     "or log in with the anchor")
        return parse_trust_document(raw)

    # -- own device ----------------------------------------------------------------------

    async def register_device_keys(self) -> int:
        """Register this device's keys; returns the log index. Idempotent."""
        acct = self.store.account()
        if acct.log_vkey is None:
            acct.log_vkey = self.trust().log_key
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

    async def _log_of(self, user_id: str) -> tuple[str, str, str, TrustDocument | None]:
        """(base URL, origin, log key, witness policy) of ``user_id``'s home server's log."""
        acct = self.store.account()
        trust = self.trust()
        server = user_id.split(":", 1)[1]
        base, vkey, policy = self.http.base_url, trust.log_key, trust
        if server != acct.user_id.split(":", 1)[1]:
            # Another server's device: its own log, relayed by our server, under the key the
            # trust document lists for it (else the one pinned on first use).
            base = f"{self.http.base_url}{CLIENT_PREFIX}/federation/{server}"
            vkey, policy = await self._remote_log_key(server, base, trust), None
        return base, server, vkey, policy

    async def _proof(self, user_id: str, index: int) -> tuple[bytes, str]:
        """The tlog-proof of entry ``index`` of ``user_id``'s home server's log, against a
        checkpoint accepted just now (:mod:`.logview`), and the log key it verifies under."""
        base, server, vkey, policy = await self._log_of(user_id)
        return await self.logs.inclusion_proof(base, server, parse_vkey(vkey), index, policy), vkey

    async def proven_entry(self, user_id: str, index: int, opening: bytes | None = None) -> AuditEntry:
        """Entry ``index`` of ``user_id``'s home server's log, opened: its inclusion proof
        checked against the pinned log key, then ``opening`` (an encoded
        :class:`~protocol.audit_seal.Opening`) checked against the proven entry's
        commitments. Without ``opening``, this server's openings endpoint is asked
        (:func:`.log_openings.fetch_opening`; a user of this server only, as a peer's
        openings are not relayed). Raises :class:`VerificationFailed`."""
        try:
            proof, vkey = await self._proof(user_id, index)
            _, got, sealed = verify_tlog_proof(proof, parse_vkey(vkey))
            if got != index:
                raise VerificationFailed(f"the server proved entry {got}, not {index}")
            if opening is None:
                if user_id.split(":", 1)[1] != self.store.account().user_id.split(":", 1)[1]:
                    raise VerificationFailed(f"log entry {index} of another server comes "
                                             "without its opening")
                opening = await fetch_opening(self.http, index)
            opened = decode_opening(opening)
            if opened.index != index:
                raise VerificationFailed(f"the opening of entry {opened.index} came for {index}")
            return opened.verify(sealed.to_bytes())
        except (AuditFailure, CryptoError, ServerError, TransportError) as exc:
            raise VerificationFailed(f"log entry {index}: {exc}") from None

    async def _registered(self, user_id: str, device_id: str, signature_key: bytes) -> DeviceKeys:
        match = [d for d in await self.user_devices(user_id) if str(d.device_id) == device_id]
        identity = device_identity(user_id, device_id).decode()
        if not match:
            raise VerificationFailed(f"{identity} is not a registered, approved device")
        if match[0].signature_key != signature_key:
            raise VerificationFailed(f"{identity} uses a key other than the registered one")
        return match[0]

    async def _verify_chain(self, user_id: str, device_id: str, signature_key: bytes,
                            device: DeviceKeys) -> None:
        """The device's approval chain in the log, ending at the user's pinned root (pinned
        now if none was). Raises :class:`VerificationFailed`, :class:`NewIdentity`."""
        chain = await device_entries(self.proven_entry, user_id, device)
        _, root_key = check_approval_chain(user_id, device_id, signature_key, device.log_index, chain)
        pinned = self.store.verified().get(root_pin_name(user_id))
        if pinned is None:
            self.store.add_verified(root_pin_name(user_id), root_key)
        elif pinned != root_key:
            raise NewIdentity(f"{user_id} has a new identity: its root device is not the one seen "
                              "before (a recovered account, or a server adding devices)")

    async def verify_device_approved(self, user_id: str, device_id: str, signature_key: bytes,
                                     device: DeviceKeys | None = None) -> None:
        """The one check a device must pass before this client claims it, adds it or lets a
        commit add it (findings 2 and 5): ``(user, device, key)`` is registered in its home
        server's log, and is its user's root or approved through a chain of
        ``device_approved`` entries (each proven included) ending at the root this profile
        pinned for the user. ``device`` is the device-list entry (fetched if None). Cached
        per device and key. Raises :class:`VerificationFailed`, :class:`NewIdentity`."""
        await self.verify_device(user_id, device_id, signature_key, device=device)

    async def verify_device(self, user_id: str, device_id: str, signature_key: bytes,
                            log_index: int | None = None, device: DeviceKeys | None = None) -> None:
        """Check that (user, device, key) is registered in the server's log and approved
        before trusting it: fetch the registration's inclusion proof and verify it against
        the pinned log key, check the registration's opening (from the device list) against
        the proven entry's commitments (user, device, key, credential, salts), then the
        approval chain (:meth:`_verify_chain`). ``device`` is the device-list entry (fetched
        if None); ``log_index`` (default: the listed one) is the registration's index.
        Results are cached in the profile. Raises :class:`VerificationFailed`."""
        identity = device_identity(user_id, device_id).decode()
        if self.store.verified().get(identity) == signature_key:
            return
        if device is None:
            device = await self._registered(user_id, device_id, signature_key)
        try:
            index = device.log_index if log_index is None else log_index
            proof, vkey = await self._proof(user_id, index)
            verify_device_inclusion(proof, parse_vkey(vkey), user_id, device_id, signature_key,
                                    device.opening, device.credential)
        except (AuditFailure, CryptoError) as exc:
            raise VerificationFailed(f"{identity}: {exc}") from None
        await self._verify_chain(user_id, device_id, signature_key, device)
        self.store.add_verified(identity, signature_key)

    async def _remote_log_key(self, server: str, base: str, trust: TrustDocument) -> str:
        """The log key of ``server``: the one the trust document lists, else the one our own
        server attests (a peer log key statement signed by its anchored log key), pinned in
        the profile the first time and never replaced. A key that only came through the
        relay is never used."""
        listed = trust.peer_log_key(server)
        pins = self.store.verified()
        pinned = pins.get(f"log-vkey:{server}")
        if listed is not None:
            if pinned is not None and pinned.decode() != listed:
                raise VerificationFailed(f"the log key of {server} pinned before is not the one "
                                         "the trust document lists")
            return listed
        if pinned is not None:
            return pinned.decode()
        try:
            out = await self.http.call("GET", f"/federation/{quote_path(server)}/log_key")
            note = out.get("note")
            if not isinstance(note, bytes):
                raise AuditFailure("the answer holds no statement")
            opened = open_note(note, [trust.log_verifier])
            origin, peer, vkey = parse_peer_log_key(opened.text)
            if (origin, peer) != (trust.server, server):
                raise AuditFailure(f"the statement is {origin}'s about {peer}")
        except (AuditFailure, CryptoError, ServerError, TransportError) as exc:
            raise VerificationFailed(f"the log key of {server} is not attested by {trust.server}: "
                                     f"{exc}") from None
        self.store.add_verified(f"log-vkey:{server}", vkey.encode())
        return vkey

    async def claim(self, user_id: str, room_id: str | None = None) -> list[tuple[str, KeyPackage]]:
        """One verified KeyPackage per device of ``user_id``: ``[(device_id, KeyPackage)]``;
        with ``room_id`` the claim is for that room and goes through its hub.

        Raises :class:`~client.sdk.errors.ServerError` (``key_package_exhausted``, ``not_found``) and
        :class:`VerificationFailed` (a package whose key or credential is not the
        device's registered one, or no device proven in the log and approved). A device
        whose registration or approval does not verify is left out (refused), and listed in
        :attr:`refused`."""
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
        results = await asyncio.gather(
            *(self.verify_device(user_id, d, kp.leaf_node.signature_key, device=registered[d])
              for d, kp in out), return_exceptions=True)
        self.refused = []
        kept = []
        for (d, kp), result in zip(out, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, VerificationFailed) or isinstance(result, LogInconsistent):
                    raise result  # a log that does not extend the accepted one: not this device's fault
                self.refused.append((device_identity(user_id, d).decode(), str(result)))
            else:
                kept.append((d, kp))
        if out and not kept:
            raise VerificationFailed(f"no device of {user_id} is proven and approved: "
                                     + "; ".join(r for _, r in self.refused))
        return kept
