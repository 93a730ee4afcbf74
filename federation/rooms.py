"""Rooms across servers: hub fan-out, history and GroupInfo for followers, claims, remote calls.

``spec/server-server.md`` sections 11-15. One :class:`RoomFederation` per
server plays both roles (the follower's in :mod:`federation.room_follower`):

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

**Follower** (rooms hosted elsewhere): :class:`federation.room_follower.RoomFollower`,
the part this class inherits: ``room_event``, ``welcome`` and ``to_device`` items, the
checks before a hub's event is stored, catch-up and stuck rooms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import aiosqlite
import structlog

from protocol.api import ClaimResponse, UserDevicesResponse
from protocol.errors import MalformedBody
from protocol.events import SignedEvent
from protocol.federation import (
    FEDERATION_PREFIX,
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
    HubUnreachable,
    NotHub,
    NotYourUser,
    ToDeviceItem,
    WelcomeItem,
    encode_room_event,
)
from protocol.ids import DeviceId, RoomId, UserId
from protocol.room_rules import Member
from protocol.rooms_api import (
    Envelope,
    EventsResponse,
    GroupInfoResponse,
    HubKeyResponse,
    SendRequest,
    SendResponse,
    ToDeviceMessage,
)
from protocol.schema import Message, pack_body
from server.delivery.inbox import DEFAULT_QUOTA, Quota
from server.delivery.wakeups import Wakeups
from server.rooms import access, storage
from server.services.key_directory import KeyDirectory
from server.services.sessions import Session
from server.storage import Database

from . import store
from .client import FederationClient
from .keyring import ServerKeyring
from .peer_keys import PeerKeys
from .room_follower import (
    CATCH_UP_INTERVAL,
    CATCH_UP_ROOMS_PER_PASS,
    HISTORY_PAGE,
    RelayedRefusal,
    RoomFollower,
    quote_id,
    server_of,
)
from .sender import FederationSender

__all__ = ["RoomFederation", "RoomFollower", "RelayedRefusal", "HISTORY_PAGE", "CATCH_UP_INTERVAL",
           "CATCH_UP_ROOMS_PER_PASS", "server_of"]

log = structlog.get_logger("confide.federation")

_A = TypeVar("_A", bound=Message)

#: Rooms whose hub GroupInfo stays cached.
_GROUP_INFO_CACHE = 1024


class RoomFederation(RoomFollower):
    """Room federation of this server: the hub side here, the follower side inherited."""

    def __init__(self, *, db: Database, keyring: ServerKeyring, peer_keys: PeerKeys,
                 client: FederationClient, sender: FederationSender, wakeups: Wakeups,
                 key_directory: KeyDirectory, server_name: str,
                 clock: Callable[[], float], inbox_quota: Quota = DEFAULT_QUOTA) -> None:
        super().__init__(db=db, peer_keys=peer_keys, client=client, wakeups=wakeups,
                         server_name=server_name, clock=clock, inbox_quota=inbox_quota)
        self.keyring = keyring
        self.sender = sender
        self.key_directory = key_directory
        self._group_infos: dict[str, tuple[int, GroupInfoResponse]] = {}

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
        target = f"{FEDERATION_PREFIX}/rooms/{quote_id(rid)}/group_info"
        resp = await self._call_hub(room_id, target, FederatedGroupInfo(session.user_id),
                                    GroupInfoResponse)
        self._group_infos.pop(rid, None)
        self._group_infos[rid] = (room.epoch, resp)
        while len(self._group_infos) > _GROUP_INFO_CACHE:
            self._group_infos.pop(next(iter(self._group_infos)))
        return resp


    async def submit_remote(self, session: Session, room_id: RoomId, req: SendRequest) -> SendResponse:
        async with self.db.read() as conn:  # a follower holds the rooms of its members only
            await access.known_room(conn, str(room_id))
        body = FederatedSend(session.user_id, session.device_id, req.txn_id, req.message, req.welcome,
                             req.group_info)
        target = f"{FEDERATION_PREFIX}/rooms/{quote_id(str(room_id))}/send"
        return await self._call_hub(room_id, target, body, SendResponse,
                                    "; nothing was stored: send again with the same txn_id")

    async def _call_hub(self, room_id: RoomId, target: str, body, answer: type[_A],
                        unreachable_hint: str = "") -> _A:
        """A signed ``POST`` to the room's hub, its answer decoded as ``answer``. The hub's
        refusal is relayed; an unreachable hub or a malformed answer is ``hub_unreachable``
        (nothing queued)."""
        try:
            out = await self._call("POST", room_id.server, target, body)
        except PeerUnreachable as exc:
            raise HubUnreachable(f"the room's hub {room_id.server} cannot be reached ({exc.message})"
                                 f"{unreachable_hint}", queued=False) from None
        try:
            return answer.from_wire(out)
        except MalformedBody:
            raise HubUnreachable("the hub answered a malformed body", queued=False) from None

    async def hub_keys(self, server: str) -> HubKeyResponse:
        """The key document of hub ``server`` (this server's own, or a peer's as fetched and
        self-signature-checked). A peer whose document cannot be had (not a configured peer,
        unreachable, an invalid document) is ``peer_unreachable``, one answer for every reason."""
        if server == self.server_name:
            await self.keyring.refresh()
            doc = self.keyring.document()
        else:
            try:
                doc = await self.peer_keys.document(server)
            except UnknownKey:
                raise PeerUnreachable(f"{server} cannot be reached") from None
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
            return await self._hub_claim(room_id, user, str(requester))
        target = f"{FEDERATION_PREFIX}/rooms/{quote_id(str(room_id))}/claim"
        resp = await self._call_hub(room_id, target, FederatedRoomClaim(user, requester), ClaimResponse)
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
        if req.user_id.server != self.server_name:
            await self.key_directory.admit(str(req.requester), req.user_id)
        return await self._hub_claim(room_id, req.user_id, str(req.requester))

    async def _hub_claim(self, room_id: RoomId, user: UserId, requester: str) -> ClaimResponse:
        """Claims through the hub count for ``requester`` (finding 8) where the packages are
        local (a remote user's are counted by the caller, and at the home server for this
        server)."""
        if user.server == self.server_name:
            return await self.key_directory.claim(user, requester)
        return await self._claim_at_home(user, room_id)

    async def user_devices(self, user: UserId) -> UserDevicesResponse:
        out = await self._call("GET", user.server, f"{FEDERATION_PREFIX}/users/{quote_id(str(user))}/devices")
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
