"""Rooms across servers: hub fan-out, follower store, forwarded submissions, catch-up.

``spec/server-server.md`` sections 11-15. One :class:`RoomFederation` per
server plays both roles:

**Hub** (rooms whose id names this server). It signs every event with the
federation keyring's current key (:meth:`signing_key`). Inside the
transaction that stores an accepted event, :meth:`on_event` queues a
``room_event`` item for every *follower server*: each server with a member
device before or after the event (so a removed server sees its removal). A
server that becomes a follower with this event first gets events
``0..seq-1`` in the same queue, in order. The Welcome of a commit goes as a
``welcome`` item to each joiner's home server. Followers' submissions arrive
at ``POST /rooms/{room_id}/send`` and are run by the hub like its own
clients' (:class:`federation.forwarded.ForwardedSends`, which holds the hub:
this class does not, so the hub can be built with it); the hub's answer
(including ``stale_epoch``) goes back as is.

**Follower** (rooms hosted elsewhere). A ``room_event`` item is applied only
if it comes from the room's hub (``not_hub``), its envelope decodes
(``room_event_malformed``), the hub's signature verifies with the named key
valid at ``ts`` (``room_event_bad_signature``) and it continues the stored
chain (``room_event_chain_broken``). The follower keeps its own public view
of the MLS group, processing each handshake as the hub did (with the
event's ``ts`` as the time), and derives memberships from it
(``room_event_rejected`` if the hub's handshake does not apply): the pure
core decides (:func:`protocol.room_rules.follow`, which ends in the same
:func:`~protocol.room_rules.apply` as the hub's) and the same writer stores
(:func:`server.rooms.storage.write_event`), so the rows are the hub's and
sync and history serve local members unchanged. An event past a gap (``seq > last_seq + 1``) is acknowledged and
triggers :meth:`catch_up`: a signed ``GET /rooms/{room_id}/events`` from the
hub, each event verified as above. A refused item stores nothing.

**Submissions by local devices to a remote room** (:meth:`submit_remote`,
only for rooms this server follows, else ``unknown_room``): a synchronous
signed call to the hub. The client gets the hub's answer or
refusal (same code, same details); if the hub cannot be reached it gets
``hub_unreachable`` (503) and *nothing is stored or queued*: the client keeps
its message and sends it again with the same ``txn_id`` (the hub's answer
is idempotent), so nothing is lost and nothing is applied twice.

**GroupInfo for a local user's further device** (:meth:`group_info_remote`):
``GET /rooms/{room_id}/group_info`` on a follower asks the hub for its *current*
GroupInfo with a signed ``POST /rooms/{room_id}/group_info`` naming the local user;
the hub answers it when that user (of the origin) has a current member device
(:meth:`group_info_for`). The answer is cached per room for the follower's current
epoch of the room (a commit applied here makes the next request ask again).

**Catch-up without a trigger** (:meth:`run_catch_up`): at start, and then every
:data:`CATCH_UP_INTERVAL` seconds for at most :data:`CATCH_UP_ROOMS_PER_PASS` rooms
(round robin), the follower asks each hub whose rooms have a current local member
for the events after its last one, so a tail it missed (no later event to reveal
the gap) still arrives.

**Stuck rooms** (:mod:`federation.stuck_rooms`): when the hub's history does not apply
here (``room_event_chain_broken``, ``room_event_rejected``, ``room_event_bad_signature``,
``room_event_malformed``) the room cannot move on; catch-up records it with the seq,
code and reason, retries it at every pass, and clears the record when it moves on.

**No network inside the database transaction**: a ``room_event`` item's hub key is
fetched by :meth:`prepare_room_event` before the receiver opens its transaction; the
handler reads the cached key document only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from urllib.parse import quote

import aiosqlite
import structlog

from crypto.errors import CryptoError
from protocol.api import ClaimResponse, UserDevicesResponse
from protocol.errors import ApiError, MalformedBody, NotFound
from protocol.events import SignedEvent
from protocol.federation import (
    FEDERATION_PREFIX,
    FederationError,
    PeerRefused,
    PeerUnreachable,
    UnknownKey,
)
from protocol.federation_rooms import (
    ITEM_ROOM_EVENT,
    ITEM_TO_DEVICE,
    ITEM_WELCOME,
    DeviceRef,
    FederatedClaim,
    FederatedGroupInfo,
    FederatedRoomClaim,
    FederatedSend,
    HubKeysUnavailable,
    HubUnreachable,
    NotHub,
    NotYourUser,
    RoomEventBadSignature,
    RoomEventChainBroken,
    RoomEventMalformed,
    RoomEventRejected,
    ToDeviceItem,
    WelcomeItem,
    decode_room_event,
    encode_room_event,
)
from protocol.ids import DeviceId, RoomId, UserId
from protocol.room_rules import Outcome, follow
from protocol.rooms_api import (
    Envelope,
    EventsResponse,
    GroupInfoResponse,
    HubKeyResponse,
    SendRequest,
    SendResponse,
    ToDeviceMessage,
)
from protocol.schema import decode_body, pack_body
from server.delivery import inbox
from server.delivery.wakeups import Wakeups, device_key
from server.rooms import access, storage
from server.services.key_directory import KeyDirectory
from server.services.sessions import Session
from server.storage import AlreadyExists, Database, devices

from . import store, stuck_rooms
from .client import FederationClient
from .inbound import InboundItem
from .keyring import ServerKeyring
from .peer_keys import PeerKeys
from .sender import FederationSender

__all__ = ["RoomFederation", "RelayedRefusal", "HISTORY_PAGE", "CATCH_UP_INTERVAL",
           "CATCH_UP_ROOMS_PER_PASS", "server_of"]

log = structlog.get_logger("confide.federation")

#: Events per history page a follower asks for (and a hub answers at most).
HISTORY_PAGE = 200
#: Seconds between catch-up passes over followed rooms (after the one at start).
CATCH_UP_INTERVAL = 60.0
#: Rooms asked about per periodic pass (round robin); the pass at start asks every room.
CATCH_UP_ROOMS_PER_PASS = 50
#: Rooms whose hub GroupInfo stays cached.
_GROUP_INFO_CACHE = 1024
#: A history refusal that leaves a followed room stuck (11.4).
_STUCK = (RoomEventChainBroken, RoomEventRejected, RoomEventBadSignature, RoomEventMalformed)

Member = tuple[str, str]


def server_of(user_id: str) -> str:
    return UserId.parse(user_id).server


class RelayedRefusal(ApiError):
    """A peer's refusal passed on to our client with the peer's code, status and details."""

    def __init__(self, exc: PeerRefused) -> None:
        details = dict(getattr(exc, "remote_details", {}) or {})
        super().__init__(f"the remote server refused: {exc.message}", **details)
        self.code = exc.remote_code  # type: ignore[misc]
        self.status = exc.remote_status if 400 <= exc.remote_status <= 599 else 502  # type: ignore[misc]


class RoomFederation:
    def __init__(self, *, db: Database, keyring: ServerKeyring, peer_keys: PeerKeys,
                 client: FederationClient, sender: FederationSender, wakeups: Wakeups,
                 key_directory: KeyDirectory, server_name: str,
                 clock: Callable[[], float]) -> None:
        self.db = db
        self.keyring = keyring
        self.peer_keys = peer_keys
        self.client = client
        self.sender = sender
        self.wakeups = wakeups
        self.key_directory = key_directory
        self.server_name = server_name
        self.clock = clock
        self._catching: dict[str, asyncio.Task] = {}
        self._group_infos: dict[str, tuple[int, GroupInfoResponse]] = {}
        self._cursor = ""

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- hub side (HubFederation) ---------------------------------------------------------

    def signing_key(self) -> tuple[str, bytes]:
        key = self.keyring.current()
        return key.key_id, key.seed

    def wake(self) -> None:
        self.sender.wake()

    async def on_event(self, tx: aiosqlite.Connection, event: SignedEvent, before: set[Member],
                       after: set[Member], welcome: bytes | None,
                       welcome_to: tuple[Member, ...]) -> None:
        """Queue the event for every follower server (see the module docstring)."""
        c = event.content
        old = {server_of(u) for u, _ in before} - {self.server_name}
        new = {server_of(u) for u, _ in after} - {self.server_name}
        if not old and not new and welcome is None:
            return  # a room of local members only: nothing to encode or queue
        now = self._now_ms()
        data = encode_room_event(event) if old or new else b""
        for dest in sorted(old | new):
            if dest not in old and c.seq > 0:
                for past in await storage.events_between(tx, c.room_id, 0, c.seq):
                    await store.enqueue(tx, dest, ITEM_ROOM_EVENT, encode_room_event(past), now)
            await store.enqueue(tx, dest, ITEM_ROOM_EVENT, data, now)
        if welcome is None:
            return
        by_server: dict[str, list[DeviceRef]] = {}
        for u, d in welcome_to:
            server = server_of(u)
            if server != self.server_name:
                by_server.setdefault(server, []).append(DeviceRef(UserId.parse(u), DeviceId.parse(d)))
        for server, targets in sorted(by_server.items()):
            item = WelcomeItem(RoomId.parse(c.room_id), UserId.parse(c.sender_user),
                               DeviceId.parse(c.sender_device), welcome, tuple(targets))
            await store.enqueue(tx, server, ITEM_WELCOME, pack_body(item), now)

    async def history_for(self, origin: str, room_id: RoomId, from_seq: int, limit: int) -> EventsResponse:
        """Signed events ``from_seq..`` for a follower server with (or that had) a member device."""
        if room_id.server != self.server_name:
            raise NotHub("this server does not host that room")
        async with self.db.read() as conn:
            await access.known_room(conn, str(room_id))
            if not await storage.server_has_had_member(conn, str(room_id), origin):
                raise NotYourUser("no device of that server is or was a member of this room")
            events = await storage.events_between(conn, str(room_id), from_seq,
                                                  from_seq + min(limit, HISTORY_PAGE))
        nxt = events[-1].content.seq + 1 if events else from_seq
        return EventsResponse(tuple(Envelope(e) for e in events), nxt)

    async def group_info_for(self, origin: str, room_id: RoomId, req: FederatedGroupInfo) -> GroupInfoResponse:
        """The room's latest GroupInfo for a user of ``origin`` with a current member device."""
        if room_id.server != self.server_name:
            raise NotHub("this server does not host that room")
        if req.user_id.server != origin:
            raise NotYourUser("a server asks for its own users only")
        async with self.db.read() as conn:
            room = await access.room_of_member_user(conn, str(room_id), str(req.user_id))
        return GroupInfoResponse(room.group_info, room.group_info_epoch)

    # -- follower side: submissions and keys ------------------------------------------------

    async def group_info_remote(self, session: Session, room_id: RoomId) -> GroupInfoResponse:
        """The hub's current GroupInfo for a local user with a member device (cached for the
        room's epoch here). Raises ``unknown_room``, ``not_member``, the hub's refusal, or
        ``hub_unreachable``."""
        rid = str(room_id)
        async with self.db.read() as conn:
            room = await access.room_of_member_user(conn, rid, str(session.user_id))
        hit = self._group_infos.get(rid)
        if hit is not None and hit[0] == room.epoch:
            return hit[1]
        target = f"{FEDERATION_PREFIX}/rooms/{_q(rid)}/group_info"
        try:
            out = await self._call("POST", room_id.server, target, FederatedGroupInfo(session.user_id))
        except PeerUnreachable as exc:
            raise HubUnreachable(f"the room's hub {room_id.server} cannot be reached ({exc.message})",
                                 queued=False) from None
        try:
            resp = GroupInfoResponse.from_wire(out)
        except MalformedBody:
            raise HubUnreachable("the hub answered a malformed body", queued=False) from None
        self._group_infos.pop(rid, None)
        self._group_infos[rid] = (room.epoch, resp)
        while len(self._group_infos) > _GROUP_INFO_CACHE:
            self._group_infos.pop(next(iter(self._group_infos)))
        return resp


    async def _call(self, method: str, server: str, target: str, body=None):
        try:
            return await self.client.call(method, server, target, body)
        except PeerRefused as exc:
            raise RelayedRefusal(exc) from None

    async def submit_remote(self, session: Session, room_id: RoomId, req: SendRequest) -> SendResponse:
        async with self.db.read() as conn:  # a follower holds the rooms of its members only
            await access.known_room(conn, str(room_id))
        body = FederatedSend(session.user_id, session.device_id, req.txn_id, req.message, req.welcome,
                             req.group_info)
        target = f"{FEDERATION_PREFIX}/rooms/{_q(str(room_id))}/send"
        try:
            out = await self._call("POST", room_id.server, target, body)
        except PeerUnreachable as exc:
            raise HubUnreachable(f"the room's hub {room_id.server} cannot be reached ({exc.message}); "
                                 "nothing was stored: send again with the same txn_id",
                                 queued=False) from None
        try:
            return SendResponse.from_wire(out)
        except MalformedBody:
            raise HubUnreachable("the hub answered a malformed body", queued=False) from None

    async def hub_keys(self, server: str) -> HubKeyResponse:
        """The key document of hub ``server`` (this server's own, or a peer's as fetched and
        self-signature-checked)."""
        if server == self.server_name:
            await self.keyring.refresh()
            doc = self.keyring.document()
        else:
            doc = await self.peer_keys.document(server)
        current = max(((kid, k) for kid, k in doc.keys.items() if k.valid_until is None),
                      key=lambda t: t[1].valid_from, default=None)
        if current is None:
            raise UnknownKey(f"{server} has no current key")
        return HubKeyResponse(server, current[1].public_key, current[0], pack_body(doc))

    async def claim(self, user: UserId) -> ClaimResponse:
        """A claim naming no room: straight to the user's home server (section 13)."""
        return await self._claim_at_home(user, None)

    async def _claim_at_home(self, user: UserId, room_id: RoomId | None) -> ClaimResponse:
        out = await self._call("POST", user.server, f"{FEDERATION_PREFIX}/keys/claim",
                               FederatedClaim(user, room_id))
        try:
            resp = ClaimResponse.from_wire(out)
        except MalformedBody:
            raise PeerUnreachable(f"{user.server} answered a malformed claim") from None
        if resp.user_id != user:
            raise PeerUnreachable(f"{user.server} answered for another user")
        return resp

    async def claim_in_room(self, requester: UserId, room_id: RoomId, user: UserId) -> ClaimResponse:
        """A local member's claim for a room (section 13.1; the caller checked that
        ``requester`` has a member device here). On the hub: claimed locally or at the
        user's home server naming the room; on a follower: a signed ``POST
        /rooms/{room_id}/claim`` to the hub, whose refusal is relayed (``hub_unreachable``
        if it cannot be reached). Raises ``peer_denied`` for a server the policy refuses."""
        if room_id.server == self.server_name:
            return await self._hub_claim(room_id, user)
        target = f"{FEDERATION_PREFIX}/rooms/{_q(str(room_id))}/claim"
        try:
            out = await self._call("POST", room_id.server, target, FederatedRoomClaim(user, requester))
        except PeerUnreachable as exc:
            raise HubUnreachable(f"the room's hub {room_id.server} cannot be reached ({exc.message})",
                                 queued=False) from None
        try:
            resp = ClaimResponse.from_wire(out)
        except MalformedBody:
            raise HubUnreachable("the hub answered a malformed body", queued=False) from None
        if resp.user_id != user:
            raise HubUnreachable("the hub answered for another user", queued=False)
        return resp

    async def claim_for_room(self, origin: str, room_id: RoomId, req: FederatedRoomClaim) -> ClaimResponse:
        """Hub side of a follower's claim (section 13.1): refused with ``not_hub`` (room not
        hosted here), ``not_your_user`` (requester not of the origin), ``unknown_room``,
        ``not_member`` (requester without a current member device), ``peer_denied`` (the
        user's server is refused by policy); nothing is claimed on a refusal."""
        if room_id.server != self.server_name:
            raise NotHub("this server does not host that room")
        if req.requester.server != origin:
            raise NotYourUser("a server claims for its own users only")
        async with self.db.read() as conn:
            await access.room_of_member_user(conn, str(room_id), str(req.requester))
        log.info("federation_claim_via_hub", origin=origin, home=req.user_id.server)
        return await self._hub_claim(room_id, req.user_id)

    async def _hub_claim(self, room_id: RoomId, user: UserId) -> ClaimResponse:
        if user.server == self.server_name:
            return await self.key_directory.claim(user)
        return await self._claim_at_home(user, room_id)

    async def user_devices(self, user: UserId) -> UserDevicesResponse:
        out = await self._call("GET", user.server, f"{FEDERATION_PREFIX}/users/{_q(str(user))}/devices")
        resp = UserDevicesResponse.from_wire(out)
        if resp.user_id != user:
            raise PeerUnreachable(f"{user.server} answered for another user")
        return resp

    async def enqueue_to_device(self, tx: aiosqlite.Connection, sender: Member,
                                messages: list[ToDeviceMessage]) -> None:
        """Queue ``to_device`` items (one per target server) in the caller's transaction."""
        by_server: dict[str, list[ToDeviceMessage]] = {}
        for m in messages:
            by_server.setdefault(m.user_id.server, []).append(m)
        for server, items in sorted(by_server.items()):
            body = ToDeviceItem(UserId.parse(sender[0]), DeviceId.parse(sender[1]), tuple(items))
            await store.enqueue(tx, server, ITEM_TO_DEVICE, pack_body(body), self._now_ms())

    # -- follower side: inbound items -------------------------------------------------------

    async def prepare_room_event(self, origin: str, data: bytes) -> None:
        """Before the receiver's transaction: make sure the hub's key document that verifies
        the event is cached (fetched if the key is not listed). Raises
        :class:`HubKeysUnavailable` (the whole transaction is refused and retried) only when
        no document of the hub could ever be fetched; item problems are left to the handler."""
        try:
            event = decode_room_event(data)
            hub = RoomId.parse(event.content.room_id).server
        except ApiError:
            return
        if hub != origin or hub == self.server_name:
            return
        with contextlib.suppress(FederationError):
            await self.peer_keys.public_key(hub, event.key_id, event.content.ts)
        if self.peer_keys.cached(hub) is None:
            raise HubKeysUnavailable(f"the key document of {hub} cannot be fetched; retry later")

    async def on_room_event_item(self, item: InboundItem) -> None:
        event = decode_room_event(item.data)
        room = RoomId.parse(event.content.room_id)
        if room.server != item.origin or room.server == self.server_name:
            raise NotHub("only a room's hub sends its events")
        try:
            self.verify_signature_cached(event)
            status, wake = await self.apply_event(item.tx, event)
        except _STUCK:
            # nothing of this item is stored; catch-up tries the hub's history and records
            # the room as stuck if that does not apply either
            self.schedule_catch_up(str(room))
            raise
        if status == Outcome.GAP:
            item.after_commit(lambda: self.schedule_catch_up(str(room)))
        elif wake:
            item.after_commit(lambda: self._wake_local(wake))

    async def on_welcome_item(self, item: InboundItem) -> None:
        w = decode_body(item.data, WelcomeItem)
        if w.room_id.server != item.origin:
            raise NotHub("only a room's hub routes its Welcomes")
        woken = set()
        for t in w.targets:
            if t.user_id.server != self.server_name:
                raise NotYourUser("a Welcome target of another server")
            if await devices.get(item.tx, str(t.user_id), str(t.device_id)) is None:
                continue  # the device was removed meanwhile
            await inbox.push(item.tx, await storage.next_stream_position(item.tx), str(t.user_id),
                             str(t.device_id), "welcome", w.welcome,
                             sender=(str(w.sender_user), str(w.sender_device)), room_id=str(w.room_id),
                             now_ms=item.received_ms)
            woken.add((str(t.user_id), str(t.device_id)))
        item.after_commit(lambda: self._wake_local(woken))

    async def on_to_device_item(self, item: InboundItem) -> None:
        m = decode_body(item.data, ToDeviceItem)
        if m.sender_user.server != item.origin:
            raise NotYourUser("a server sends for its own users' devices only")
        woken = set()
        for t in m.messages:
            if t.user_id.server != self.server_name:
                raise NotYourUser("a target of another server")
            if await devices.get(item.tx, str(t.user_id), str(t.device_id)) is None:
                raise NotFound(f"no device {t.device_id} of {t.user_id}")
            await inbox.push(item.tx, await storage.next_stream_position(item.tx), str(t.user_id),
                             str(t.device_id), "to_device", t.payload,
                             sender=(str(m.sender_user), str(m.sender_device)), room_id=None,
                             now_ms=item.received_ms)
            woken.add((str(t.user_id), str(t.device_id)))
        item.after_commit(lambda: self._wake_local(woken))

    def _wake_local(self, members: set[Member]) -> None:
        self.wakeups.notify(device_key(u, d) for u, d in members if server_of(u) == self.server_name)

    def verify_signature_cached(self, event: SignedEvent) -> None:
        """:meth:`verify_signature` with the cached key document only (no I/O): for handlers
        that hold the database transaction."""
        hub = RoomId.parse(event.content.room_id).server
        try:
            event.verify(self.peer_keys.cached_key(hub, event.key_id, event.content.ts))
        except (FederationError, CryptoError) as exc:
            raise RoomEventBadSignature(f"the hub signature does not check: {exc}") from None

    async def verify_signature(self, event: SignedEvent) -> None:
        """The hub's signature with the named key, valid at the event's ``ts``."""
        hub = RoomId.parse(event.content.room_id).server
        try:
            public = await self.peer_keys.public_key(hub, event.key_id, event.content.ts)
            event.verify(public)
        except (FederationError, CryptoError) as exc:
            raise RoomEventBadSignature(f"the hub signature does not check: {exc}") from None

    async def apply_event(self, tx: aiosqlite.Connection, event: SignedEvent) -> tuple[Outcome, set[Member]]:
        """Store a verified event of a followed room through the room core
        (:func:`protocol.room_rules.follow`, then :func:`server.rooms.storage.write_event`, as
        the hub stores it): ``(APPLIED, devices to wake)``, ``(DUPLICATE, ∅)`` or ``(GAP, ∅)``.
        Raises the ``room_event_*`` errors."""
        c = event.content
        found = await storage.load_head(tx, c.room_id)
        head, row = found if found is not None else (None, None)
        stored_id = None
        if head is not None and c.seq <= head.last_seq:
            stored_id = await storage.event_id_at(tx, c.room_id, c.seq)
        followed = follow(head, None if row is None else row.view, event, stored_id)
        applied = followed.applied
        if applied is None:
            return followed.outcome, set()
        try:
            await storage.write_event(tx, applied, now_ms=self._now_ms())
        except AlreadyExists:
            raise RoomEventRejected("a room for this MLS group exists here") from None
        return followed.outcome, set(applied.before | applied.head.members)

    # -- follower side: catch-up ---------------------------------------------------------

    def schedule_catch_up(self, room_id: str) -> None:
        task = self._catching.get(room_id)
        if task is None or task.done():
            self._catching[room_id] = asyncio.create_task(self._catch_up_logged(room_id))

    async def _catch_up_logged(self, room_id: str) -> None:
        try:
            await self.catch_up(room_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("federation_catch_up_failed", code=getattr(exc, "code", type(exc).__name__))

    async def followed_rooms(self) -> list[str]:
        """Rooms hosted elsewhere with a current member device of this server, in id order."""
        async with self.db.read() as conn:
            rows = await storage.rooms_with_local_members(conn, self.server_name)
        out = set()
        for room_id, user_id in rows:
            try:
                if RoomId.parse(room_id).server != self.server_name and server_of(user_id) == self.server_name:
                    out.add(room_id)
            except ApiError:
                continue
        return sorted(out)

    async def catch_up_pass(self, max_rooms: int | None = None) -> int:
        """Catch up followed rooms, one after another: all of them, or the next ``max_rooms``
        after the previous pass's last (round robin). Returns the events applied. Errors are
        logged per room (and recorded for stuck rooms); a hub that is down is asked again at
        the next pass."""
        rooms = await self.followed_rooms()
        if max_rooms is not None and len(rooms) > max_rooms:
            after = [r for r in rooms if r > self._cursor]
            rooms = (after + [r for r in rooms if r <= self._cursor])[:max_rooms]
            self._cursor = rooms[-1]
        applied = 0
        for room_id in rooms:
            task = self._catching.get(room_id)
            if task is not None and not task.done():
                continue  # a catch-up of this room runs already
            try:
                applied += await self.catch_up(room_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("federation_catch_up_failed", code=getattr(exc, "code", type(exc).__name__))
        return applied

    async def run_catch_up(self, interval: float = CATCH_UP_INTERVAL) -> None:
        """A pass over every followed room at start, then a bounded pass every ``interval``."""
        limit: int | None = None
        while True:
            try:
                await self.catch_up_pass(limit)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.error("federation_catch_up_pass_failed", exc_info=True)
            limit = CATCH_UP_ROOMS_PER_PASS
            await asyncio.sleep(interval)

    async def catch_up(self, room_id: str) -> int:
        """Fetch and apply the hub's events after the stored ``last_seq`` (signed history,
        each event verified); returns how many were applied. Raises the ``room_event_*``
        errors (nothing of the refused page is stored) or the federation client's errors."""
        room = RoomId.parse(room_id)
        applied = 0
        while True:
            async with self.db.read() as conn:
                row = await storage.get_room(conn, room_id)
            start = 0 if row is None else row.last_seq + 1
            target = f"{FEDERATION_PREFIX}/rooms/{_q(room_id)}/events?from={start}&limit={HISTORY_PAGE}"
            out = await self._call("GET", room.server, target)
            try:
                page = EventsResponse.from_wire(out)
            except MalformedBody as exc:
                raise RoomEventMalformed(f"history page: {exc.message}") from None
            events = [e.event for e in page.events]
            if not events:
                return applied
            at: SignedEvent | None = None
            try:
                for e in events:
                    at = e
                    if e.content.room_id != room_id:
                        raise RoomEventMalformed("history of another room")
                    await self.verify_signature(e)
                wake: set[Member] = set()
                async with self.db.transaction() as tx:
                    for e in events:
                        at = e
                        status, woken = await self.apply_event(tx, e)
                        if status == Outcome.GAP:
                            raise RoomEventChainBroken("the hub's history has a gap")
                        applied += status == Outcome.APPLIED
                        wake |= woken
                    if len(events) < HISTORY_PAGE:
                        await stuck_rooms.clear(tx, room_id)
            except _STUCK as exc:
                await self._record_stuck(room_id, at, exc)
                raise
            self._wake_local(wake)
            if len(events) < HISTORY_PAGE:
                return applied

    async def _record_stuck(self, room_id: str, at: SignedEvent | None, exc: ApiError) -> None:
        seq = at.content.seq if at is not None else -1
        log.warning("federation_room_stuck", code=exc.code, seq=seq)
        async with self.db.transaction() as tx:
            await stuck_rooms.record(tx, room_id, seq, None if at is None else at.event_id, exc.code,
                                     exc.message, self._now_ms())

    async def close(self) -> None:
        for task in list(self._catching.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _q(value: str) -> str:
    return quote(value, safe="!:@")
