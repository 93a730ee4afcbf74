"""The SDK's entry point: :class:`Client`, one device's session with its homeserver.

A Client is built on an open :class:`client.profile.Profile` (the encrypted
local state) and composes the transport (:mod:`.http`), keys (:mod:`.keys`),
delivery (:mod:`.sync`) and room operations (:mod:`.rooms`). Every public
method that reads or changes local state runs under the profile lock (an
asyncio lock within the process, ``flock`` across processes), re-reading the
state from disk, so several processes may share one profile.

Start: :meth:`Client.register` (an invite, ``CODE#ANCHOR``), :meth:`Client.login`
(password and, on a new device, the trust anchor; a profile that already has an
account logs the same device in again under its stored anchor), or
:meth:`Client.open` (the stored session). Both register and login register the
device's keys and upload KeyPackages.

Trust anchor: before it sends the invite code or the password, the client fetches
the server's trust document (``GET /_confide/client/v1/trust``) and compares its hash
with the anchor (:mod:`protocol.trust`); a mismatch, or no anchor for a new device,
raises :class:`~client.sdk.errors.TrustAnchorMismatch` and nothing is written to the
profile. The document's log key and witness policy then hold for every checkpoint
(:mod:`.logview`).

Second devices: a device created by :meth:`Client.login` is *pending* until an
approved device of the same user approves it (:meth:`Client.pending_devices`,
:meth:`Client.approve_device`, after the person compared :attr:`Client.own_code` shown
on the new device with the code the approver shows). Then an existing device *adds*
it to the user's rooms (:meth:`Client.add_own_devices`, also run by
:meth:`Client.sync` at most every ``own_devices_interval`` seconds when
``auto_add_own_devices``), once its registration and approval chain are proven in the
server's transparency log. The same sync step watches the account's devices and
records alerts (:meth:`Client.alerts`). See ``client/sdk/README.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from client.profile import Profile
from crypto.primitives import ed25519_public_key
from crypto.rng import Rng, system_rng
from protocol.api import (
    CLIENT_PREFIX,
    DevicesResponse,
    Empty,
    KeyPackageCountResponse,
    LoginRequest,
    RegisterRequest,
    SessionResponse,
)
from protocol.ids import DeviceId
from protocol.rooms_api import AttachmentLink, AttachmentResponse
from protocol.trust import (
    TrustDocument,
    TrustDocumentInvalid,
    anchor_of,
    check_anchor,
    parse_trust_document,
    split_invite,
)

from . import own_devices
from .device_trust import root_pin_name, short_code
from .envelopes import Refusal
from .errors import (
    RetriesExhausted,
    ServerError,
    TrustAnchorMismatch,
    VerificationFailed,
)
from .groups import GroupStore
from .http import Http, quote_path
from .keys import Keys, split_identity
from .messages import AttachmentMessage, RoomMessage
from .mfa import MfaCalls
from .payload import Attachment, encode_attachment, encode_text, open_attachment, seal_attachment
from .rooms import Rooms
from .store import Account, RoomStatus, Store
from .sync import Sync, SyncResult

__all__ = ["Client", "RoomSummary"]


@dataclass(frozen=True)
class RoomSummary:
    room_id: str
    name: str | None
    status: RoomStatus
    epoch: int | None
    members: tuple[str, ...]
    last_seq: int
    warnings: tuple[str, ...]
    refused: tuple[Refusal, ...] = ()  # events that failed verification, not applied


class Client:
    """One device's session; see the module docstring."""

    def __init__(self, profile: Profile, *, session: aiohttp.ClientSession | None = None,
                 rng: Rng = system_rng, auto_add_own_devices: bool = True,
                 own_devices_interval: float = 30.0) -> None:
        self.profile = profile
        self.store = Store(profile)
        self.rng = rng
        server, token = None, None
        if self.store.has_account():
            acct = self.store.account()
            server, token = acct.server, acct.access_token
        self.http = Http(server or "http://invalid", token, session=session)
        self.keys = Keys(self.http, self.store, rng)
        self.groups = GroupStore()
        self.sync_engine = Sync(self.http, self.store, self.keys, self.groups)
        self.rooms_engine = Rooms(self.http, self.store, self.keys, self.sync_engine, self.groups, rng)
        self.auto_add_own_devices = auto_add_own_devices
        self.own_devices_interval = own_devices_interval
        self.mfa = MfaCalls(self.http)
        #: The last register/login gave an enrolment-only session (the role requires MFA):
        #: only :meth:`mfa_begin` / :meth:`mfa_confirm` work until MFA is on.
        self.mfa_enrolment_required = False
        self._last_own_devices = 0.0
        self._lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def open(cls, profile: Profile, **kw: Any) -> Client:
        """A client on the session stored in ``profile`` (raises NotSignedIn without one)."""
        client = cls(profile, **kw)
        client.store.account()
        return client

    @classmethod
    async def register(cls, profile: Profile, server: str, invite: str, user: str, password: str,
                       device_name: str = "confide", **kw: Any) -> Client:
        """Create an account from an invite (``CODE#ANCHOR``); this device's keys and
        KeyPackages are uploaded. Raises :class:`TrustAnchorMismatch` (nothing sent, nothing
        written) when the invite has no anchor or the server's trust document is not the
        one it names. ``device_name`` stays in the profile: the server stores no
        device name."""
        try:
            code, anchor = split_invite(invite)
        except TrustDocumentInvalid as exc:
            raise TrustAnchorMismatch(f"the invite's trust anchor is malformed: {exc}") from None
        if anchor is None:
            raise TrustAnchorMismatch("the invite carries no trust anchor (CODE#ANCHOR): ask the "
                                      "practice for the whole invite")
        client = cls(profile, **kw)
        client.http.base_url = server.rstrip("/")
        try:
            doc = await client._anchored_document(anchor)
            out = await client.http.request("POST", "/register",
                                            RegisterRequest(code, user, password),
                                            SessionResponse)
            await client._start(server, out, trust=doc, device_name=device_name, root=True)
        except BaseException:
            await client.close()
            raise
        return client

    @classmethod
    async def login(cls, profile: Profile, server: str, user: str, password: str,
                    device_name: str = "confide", *, totp: str | None = None,
                    recovery_code: str | None = None, anchor: str | None = None,
                    **kw: Any) -> Client:
        """Log in; a profile with an account logs its device in again (same keys, same
        anchor). An account with MFA on needs ``totp`` (a current code) or ``recovery_code``.
        A new device needs ``anchor`` (on the invite, or shown by ``confide anchor`` on
        another device of the account): without it, or when the server's trust document
        does not match it, :class:`TrustAnchorMismatch` is raised before the password is
        sent."""
        client = cls(profile, **kw)
        client.http.base_url = server.rstrip("/")
        old = client.store.account() if client.store.has_account() else None
        body = LoginRequest(user, password,
                            DeviceId.parse(old.device_id) if old is not None else None,
                            totp, recovery_code)
        try:
            if old is not None and old.trust_document is not None:
                stored = anchor_of(old.trust_document)
                if anchor is not None and anchor != stored:
                    raise TrustAnchorMismatch("the anchor given is not the one this profile holds")
                anchor = stored
            if anchor is None:
                raise TrustAnchorMismatch("a new device needs the server's trust anchor "
                                          "(--anchor; on the invite, or `confide anchor` on "
                                          "another device of the account)")
            doc = await client._anchored_document(anchor)
            out = await client.http.request("POST", "/login", body, SessionResponse)
            await client._start(server, out, old, trust=doc, device_name=device_name)
        except BaseException:
            await client.close()
            raise
        return client

    async def _anchored_document(self, anchor: str) -> TrustDocument:
        """The server's trust document, if its hash is ``anchor``; else TrustAnchorMismatch."""
        try:
            check_anchor(anchor)
        except TrustDocumentInvalid as exc:
            raise TrustAnchorMismatch(f"the trust anchor is malformed: {exc}") from None
        raw = await self.http.get_raw(CLIENT_PREFIX + "/trust")  # TransportError: unreachable
        if anchor_of(raw) != anchor:
            raise TrustAnchorMismatch("the server's trust document does not match the invite's "
                                      "anchor: this may not be your practice's server")
        try:
            return parse_trust_document(raw)
        except TrustDocumentInvalid as exc:
            raise TrustAnchorMismatch(f"the server's trust document is malformed: {exc}") from None

    @property
    def anchor(self) -> str:
        """The trust anchor of this profile (for another device's ``login``)."""
        raw = self.store.account().trust_document
        if raw is None:
            raise VerificationFailed("this profile has no trust anchor")
        return anchor_of(raw)

    def log_alerts(self) -> list[dict[str, Any]]:
        """Checkpoints refused as rollbacks, forks or unwitnessed (newest last)."""
        return self.store.log_alerts()

    async def _start(self, server: str, out: SessionResponse, old: Account | None = None, *,
                     trust: TrustDocument, device_name: str = "", root: bool = False) -> None:
        if out.user_id.server != trust.server:
            raise TrustAnchorMismatch(f"the trust document is for {trust.server}, the account "
                                      f"for {out.user_id.server}")
        async with self._exclusive():
            if old is not None and old.device_id == str(out.device_id):
                acct = old
                acct.access_token, acct.server = out.access_token, server.rstrip("/")
                if acct.trust_document is None:
                    acct.trust_document = trust.encode()
                    acct.log_vkey = trust.log_key
            else:
                acct = Account(server.rstrip("/"), str(out.user_id), str(out.device_id),
                               out.access_token, self.rng(32), trust.log_key,
                               trust_document=trust.encode(), device_name=device_name)
            self.store.save_account(acct)
            self.http.token = acct.access_token
            if root:  # this device is the account's root: every later device chains to it
                self.store.add_verified(root_pin_name(acct.user_id),
                                        ed25519_public_key(acct.signature_seed))
            self.mfa_enrolment_required = out.mfa_enrolment_required
            if not out.mfa_enrolment_required:  # else after mfa_confirm
                await self.keys.register_device_keys()
                await self.keys.top_up()

    async def mfa_begin(self):
        """Start TOTP enrolment: the secret and ``otpauth://`` URI (:class:`protocol.mfa.MfaBeginResponse`)."""
        return await self.mfa.begin()

    async def mfa_confirm(self, code: str) -> tuple[str, ...]:
        """Turn MFA on with a current code; returns the recovery codes (shown once). A device
        whose session was enrolment-only registers its keys now."""
        codes = await self.mfa.confirm(code)
        self.mfa_enrolment_required = False
        async with self._exclusive():
            if not self.store.account().keys_registered:
                await self.keys.register_device_keys()
                await self.keys.top_up()
        return codes

    async def close(self) -> None:
        await self.http.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def logout(self) -> None:
        """Revoke this device's token (the device and its keys stay)."""
        await self.http.request("POST", "/logout", Empty(), Empty)

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        async with self._lock:
            with self.profile.locked():
                yield

    # -- identity ------------------------------------------------------------------------------

    @property
    def user_id(self) -> str:
        return self.store.account().user_id

    @property
    def device_id(self) -> str:
        return self.store.account().device_id

    @property
    def own_code(self) -> str:
        """The short code of this device's key: an approving device must show the same."""
        acct = self.store.account()
        return short_code(acct.user_id, ed25519_public_key(acct.signature_seed))

    # -- this account's devices: approval and alerts --------------------------------------------

    async def pending_devices(self) -> list[own_devices.Pending]:
        """This account's other devices waiting for approval, each with its short code."""
        async with self._exclusive():
            return await own_devices.pending_devices(self.http, self.store)

    async def approve_device(self, device_id: str, code: str) -> int:
        """Approve a pending device whose code is ``code`` (raises
        :class:`~.own_devices.CodeMismatch` otherwise); returns the log index."""
        async with self._exclusive():
            return await own_devices.approve_device(self.http, self.store, device_id, code)

    async def account_devices(self) -> DevicesResponse:
        """Every device of this account, as the server lists them (with ``pending``)."""
        return await own_devices.account_devices(self.http)

    async def is_pending(self) -> bool:
        """Whether this device still waits for approval by another device of the account."""
        out = await self.account_devices()
        return any(str(d.device_id) == self.device_id and d.pending for d in out.devices)

    async def watch_own_devices(self) -> list[str]:
        """Check this account's devices now; returns the new alerts."""
        async with self._exclusive():
            return await own_devices.watch_own_devices(self.http, self.store, self.keys)

    def alerts(self) -> list[str]:
        """Alerts about this account's devices (pending, or active without approval)."""
        return self.store.alerts()

    def accept_new_identity(self, user_id: str) -> None:
        """Forget the root pinned for ``user_id`` and its verified devices, after the person
        confirmed the new identity out of band (account recovery, ``spec/security.md``)."""
        with self.profile.locked():
            self.store.forget_verified(root_pin_name(user_id))
            self.store.forget_verified(f"{user_id}/")

    # -- rooms -----------------------------------------------------------------------------------

    async def create_room(self, name: str | None = None) -> str:
        async with self._exclusive():
            return await self.rooms_engine.create(name)

    async def invite(self, room_id: str, user_id: str) -> list[str]:
        """Add all of ``user_id``'s devices; returns the identities added."""
        async with self._exclusive():
            return await self.rooms_engine.invite(room_id, user_id)

    async def remove_member(self, room_id: str, user_id: str) -> int:
        async with self._exclusive():
            return await self.rooms_engine.remove_member(room_id, user_id)

    async def leave(self, room_id: str) -> None:
        async with self._exclusive():
            await self.rooms_engine.leave(room_id)

    async def rotate_keys(self, room_id: str) -> int:
        async with self._exclusive():
            return await self.rooms_engine.rotate_keys(room_id)

    async def add_own_devices(self) -> dict[str, list[str]]:
        async with self._exclusive():
            return await self.rooms_engine.add_own_devices()

    async def join_external(self, room_id: str) -> int:
        """Join a room where another device of this user is a member (external commit from
        the hub's GroupInfo); returns the epoch. The alternative to :meth:`add_own_devices`."""
        async with self._exclusive():
            epoch = await self.rooms_engine.join_external(room_id)
            g = self.groups.live(self.store.room(room_id))
            await self._verify_identities({room_id: [m.identity for m in g.members]})
            return epoch

    def rooms(self) -> list[RoomSummary]:
        out = []
        for room_id in self.store.room_ids():
            r = self.store.room(room_id)
            g = self.groups.view(r)
            members = tuple(sorted(m.identity.decode() for m in g.members)) if g else ()
            out.append(RoomSummary(room_id, r.name, r.status, g.epoch if g else None, members,
                                   r.last_seq, tuple(r.warnings),
                                   tuple(Refusal.from_record(x) for x in r.refused)))
        return out

    def room(self, room_id: str) -> RoomSummary:
        return next(r for r in self.rooms() if r.room_id == room_id)

    # -- messages ---------------------------------------------------------------------------------

    async def send_text(self, room_id: str, text: str) -> int:
        """Send a text message; returns its seq."""
        payload = encode_text(text)
        async with self._exclusive():
            return await self.rooms_engine.send_payload(room_id, payload, {"type": "text", "body": text})

    async def send_attachment(self, room_id: str, data: bytes, name: str) -> int:
        """Encrypt ``data`` under a fresh key, upload the ciphertext, send the key in MLS,
        then link the attachment to the room at that message's seq, so that the room's
        members may download it (``spec/client-server.md`` 11.3)."""
        blob, key, nonce = seal_attachment(data, self.rng)
        out = await self.http.request("POST", "/attachments", None, AttachmentResponse, raw=blob)
        att = Attachment(out.content_id, key, nonce, name, len(data))
        payload = encode_attachment(att)
        local = att.to_payload()
        async with self._exclusive():
            seq = await self.rooms_engine.send_payload(room_id, payload, local)
        await self.http.request("POST", f"/rooms/{quote_path(room_id)}/attachments/{out.content_id}",
                                AttachmentLink(seq), AttachmentResponse)
        return seq

    async def download_attachment(self, message: AttachmentMessage) -> bytes:
        """The plaintext of an attachment message (checked against its content id and key)."""
        blob = await self.http.get_bytes(f"/attachments/{message.content_id}")
        return open_attachment(message.attachment, blob)

    def messages(self, room_id: str, after_seq: int = -1) -> list[RoomMessage]:
        """The room's messages this device has read or sent, in seq order."""
        return [m for m in self.store.messages(room_id) if m.seq > after_seq]

    async def catch_up(self, room_id: str) -> SyncResult:
        """Apply one room's events after this device's last, from its history (no ``GET
        /sync``: the inbox and other rooms wait), and verify the members it added."""
        async with self._exclusive():
            result = await self.sync_engine.catch_up(room_id)
            await self._verify_identities(result.added)
        return result

    async def sync(self, timeout_ms: int = 0) -> SyncResult:
        """One sync round: fetch (long-poll up to ``timeout_ms``), then apply under the lock;
        then commit others' pending proposals, verify added members, add own devices and top
        up KeyPackages as needed."""
        async with self._exclusive():
            for room_id in self.store.room_ids():
                await self.rooms_engine.resolve_pending(room_id)
        body = await self.sync_engine.fetch(timeout_ms)
        async with self._exclusive():
            result = await self.sync_engine.apply(body)
            await self._after_sync(result)
        return result

    async def _after_sync(self, result: SyncResult) -> None:
        for room_id in self.store.room_ids():
            room = self.store.room(room_id)
            g = self.groups.view(room)
            others = g is not None and any(p.leaf != g.own_leaf_index
                                           for p in g.pending_proposals.values())
            if room.status is RoomStatus.JOINED and others:
                try:
                    await self.rooms_engine.commit_pending_proposals(room_id)
                except (ServerError, RetriesExhausted) as exc:
                    self._warn(room_id, f"could not commit others' proposals: {exc}")
        for room_id in result.joined:
            room = self.store.room(room_id)
            g = self.groups.view(room)
            if g is not None:
                ids = [m.identity for m in g.members]
                result.added.setdefault(room_id, []).extend(ids)
        await self._verify_identities(result.added)
        if result.welcomes_used:
            await self.keys.top_up()
        now = time.monotonic()
        if self.auto_add_own_devices and now - self._last_own_devices >= self.own_devices_interval:
            self._last_own_devices = now
            try:
                await own_devices.watch_own_devices(self.http, self.store, self.keys)
            except (ServerError, RetriesExhausted, VerificationFailed) as exc:
                self.store.add_alert(f"could not check this account's devices: {exc}")
            try:
                await self.rooms_engine.add_own_devices()
            except (ServerError, RetriesExhausted, VerificationFailed) as exc:
                for room_id in self.store.room_ids():
                    self._warn(room_id, f"could not add this user's other devices: {exc}")

    def _warn(self, room_id: str, text: str) -> None:
        room = self.store.room(room_id)
        if room.status is RoomStatus.JOINED and text not in room.warnings[-5:]:
            room.warnings.append(text)
            self.store.save_room(room)

    async def _verify_identities(self, by_room: dict[str, list[bytes]]) -> None:
        acct = self.store.account()
        for room_id, identities in by_room.items():
            room = self.store.room(room_id)
            g = self.groups.view(room)
            keys = {m.identity: m.signature_key for m in g.members} if g else {}
            changed = False
            for identity in identities:
                if identity not in keys or identity == f"{acct.user_id}/{acct.device_id}".encode():
                    continue
                try:
                    user, device = split_identity(identity)
                    await self.keys.verify_device(user, device, keys[identity])
                except VerificationFailed as exc:
                    room.warnings.append(f"unverified member {identity.decode(errors='replace')}: {exc}")
                    changed = True
            if changed:
                self.store.save_room(room)

    async def verify_room_members(self, room_id: str) -> list[str]:
        """Check every member's device registration in the log; returns the failures."""
        async with self._exclusive():
            room = self.store.room(room_id)
            before = len(room.warnings)
            g = self.groups.view(room)
            await self._verify_identities({room_id: [m.identity for m in g.members] if g else []})
            return self.store.room(room_id).warnings[before:]

    async def ensure_key_packages(self) -> KeyPackageCountResponse:
        async with self._exclusive():
            return await self.keys.top_up()
