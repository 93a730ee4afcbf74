"""Room federation's follower side: room events from hubs, stored as the hub stored them.

``spec/server-server.md`` sections 11.1-11.4 and 14. :class:`RoomFollower` is the
part of :class:`federation.rooms.RoomFederation` that receives: ``room_event``,
``welcome`` and ``to_device`` items, and the catch-up from a hub's signed history.

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
sync and history serve local members unchanged. An event past a gap
(``seq > last_seq + 1``) is acknowledged and triggers :meth:`catch_up`: a
signed ``GET /rooms/{room_id}/events`` from the hub, each event verified as
above. A refused item stores nothing.

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
from crypto.mls.welcome import Welcome
from protocol.errors import ApiError, MalformedBody, NotFound
from protocol.events import EventKind, SignedEvent
from protocol.federation import FEDERATION_PREFIX, FederationError, PeerRefused
from protocol.federation_rooms import (
    HubKeysUnavailable,
    NotHub,
    NotYourUser,
    RoomEventBadSignature,
    RoomEventChainBroken,
    RoomEventMalformed,
    RoomEventRejected,
    ToDeviceItem,
    WelcomeItem,
    WelcomeUnvouched,
    decode_room_event,
)
from protocol.ids import DeviceId, RoomId, UserId
from protocol.room_errors import NotMember
from protocol.room_messages import decode_welcome
from protocol.room_rules import Member, Outcome, follow
from protocol.rooms_api import EventsResponse
from protocol.schema import decode_body
from protocol.welcome_vouching import welcome_targets
from server.delivery import inbox
from server.delivery.wakeups import Wakeups, device_key
from server.rooms import access, storage
from server.storage import AlreadyExists, Database, devices

from . import stuck_rooms
from .client import FederationClient
from .inbound import InboundItem
from .peer_keys import PeerKeys

__all__ = ["RoomFollower", "RelayedRefusal", "HISTORY_PAGE", "CATCH_UP_INTERVAL",
           "CATCH_UP_ROOMS_PER_PASS", "server_of", "quote_id"]

log = structlog.get_logger("confide.federation")

#: Events per history page a follower asks for (and a hub answers at most).
HISTORY_PAGE = 200
#: Seconds between catch-up passes over followed rooms (after the one at start).
CATCH_UP_INTERVAL = 60.0
#: Rooms asked about per periodic pass (round robin); the pass at start asks every room.
CATCH_UP_ROOMS_PER_PASS = 50
#: Events before a commit searched for the proposals it adds by reference (a Welcome's check).
_PROPOSAL_WINDOW = 200
#: A history refusal that leaves a followed room stuck (11.4).
_STUCK = (RoomEventChainBroken, RoomEventRejected, RoomEventBadSignature, RoomEventMalformed)


def server_of(user_id: str) -> str:
    return UserId.parse(user_id).server


def quote_id(value: str) -> str:
    """A room or user id as one path segment of a federation target."""
    return quote(value, safe="!:@")


class RelayedRefusal(ApiError):
    """A peer's refusal passed on to our client with the peer's code, status and details."""

    def __init__(self, exc: PeerRefused) -> None:
        details = dict(getattr(exc, "remote_details", {}) or {})
        super().__init__(f"the remote server refused: {exc.message}", **details)
        self.code = exc.remote_code  # type: ignore[misc]
        self.status = exc.remote_status if 400 <= exc.remote_status <= 599 else 502  # type: ignore[misc]


class RoomFollower:
    """Receives rooms hosted elsewhere (see the module docstring)."""

    def __init__(self, *, db: Database, peer_keys: PeerKeys, client: FederationClient,
                 wakeups: Wakeups, server_name: str, clock: Callable[[], float],
                 inbox_quota: inbox.Quota = inbox.DEFAULT_QUOTA) -> None:
        self.db = db
        self.inbox_quota = inbox_quota
        self.peer_keys = peer_keys
        self.client = client
        self.wakeups = wakeups
        self.server_name = server_name
        self.clock = clock
        self._catching: dict[str, asyncio.Task] = {}
        self._cursor = ""

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def _call(self, method: str, server: str, target: str, body=None):
        try:
            return await self.client.call(method, server, target, body)
        except PeerRefused as exc:
            raise RelayedRefusal(exc) from None

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
        """A hub's Welcome for local devices (``spec/server-server.md`` 11.2), stored only
        when every check holds: the origin is the room's hub (``not_hub``); the room is
        followed here (``unknown_room``); the sender is or was a member of it as this server
        knows it (``not_member``); each target is a local device (``not_your_user``) that a
        stored commit of that sender added (``welcome_unvouched``: the hub's signed event
        vouches for it); the bytes are one MLS Welcome of the room's cipher suite whose
        secrets name only KeyPackages that commit adds (``welcome_invalid``), among them each
        target's (``welcome_unvouched``). A refused item stores nothing."""
        w = decode_body(item.data, WelcomeItem)
        room_id, sender = str(w.room_id), (str(w.sender_user), str(w.sender_device))
        if w.room_id.server != item.origin or w.room_id.server == self.server_name:
            raise NotHub("only a room's hub routes its Welcomes")
        room = await access.known_room(item.tx, room_id)
        if not await storage.is_visible_member(item.tx, room_id, *sender):
            raise NotMember("the Welcome's sender is not a member of this room")
        by_commit: dict[int, list[Member]] = {}
        for t in w.targets:
            if t.user_id.server != self.server_name:
                raise NotYourUser("a Welcome target of another server")
            target = (str(t.user_id), str(t.device_id))
            if await devices.get(item.tx, *target) is None:
                continue  # the device was removed meanwhile
            seq = await storage.added_by(item.tx, room_id, *target, sender)
            if seq is None:
                raise WelcomeUnvouched("no commit of the sender added a target device")
            by_commit.setdefault(seq, []).append(target)
        welcome = decode_welcome(w.welcome)
        for seq, targets in by_commit.items():
            if not set(targets) <= await self._welcome_named(item.tx, room, seq, welcome):
                raise WelcomeUnvouched("the Welcome names no KeyPackage of a target device")
        woken = {t for targets in by_commit.values() for t in targets}
        for user, device in sorted(woken):
            if not await inbox.push(item.tx, await storage.next_stream_position(item.tx), user,
                                    device, "welcome", w.welcome, sender=sender, room_id=room_id,
                                    now_ms=item.received_ms, quota=self.inbox_quota):
                log.warning("welcome_dropped_inbox_full")  # spec/security.md, finding 10
        item.after_commit(lambda: self._wake_local(woken))

    @staticmethod
    async def _welcome_named(tx: aiosqlite.Connection, room: storage.StoredRoom, seq: int,
                             welcome: Welcome) -> set[Member]:
        """The devices whose KeyPackage, added by the stored commit at ``seq``, the Welcome
        names (the commit's by-reference Adds among the proposals of its epoch in the
        :data:`_PROPOSAL_WINDOW` events before it). Raises :class:`WelcomeInvalid`."""
        events = await storage.events_between(tx, room.room_id, max(0, seq - _PROPOSAL_WINDOW), seq + 1)
        commit = events[-1].content
        proposals = [e.content.message for e in events[:-1]
                     if e.content.kind == EventKind.PROPOSAL and e.content.epoch == commit.epoch]
        return welcome_targets(welcome, room.cipher_suite, commit.message, proposals)

    async def on_to_device_item(self, item: InboundItem) -> None:
        m = decode_body(item.data, ToDeviceItem)
        if m.sender_user.server != item.origin:
            raise NotYourUser("a server sends for its own users' devices only")
        await self._push_local(item, [(t.user_id, t.device_id, t.payload) for t in m.messages],
                               "to_device", (str(m.sender_user), str(m.sender_device)), None,
                               foreign="a target of another server", missing_refused=True)

    async def _push_local(self, item: InboundItem, deliveries: list[tuple[UserId, DeviceId, bytes]],
                          kind: str, sender: Member, room_id: str | None, *, foreign: str,
                          missing_refused: bool) -> None:
        """Push each ``(user, device, payload)`` of an inbound Welcome or to-device item into
        this server's inboxes, in the item's transaction, and wake the devices after commit.
        A target of another server raises NotYourUser(``foreign``); a device that is gone is
        skipped (a Welcome: it was removed meanwhile) or, with ``missing_refused``, NotFound."""
        woken: set[Member] = set()
        for user, device, payload in deliveries:
            if user.server != self.server_name:
                raise NotYourUser(foreign)
            if await devices.get(item.tx, str(user), str(device)) is None:
                if missing_refused:
                    raise NotFound(f"no device {device} of {user}")
                continue
            if not await inbox.push(item.tx, await storage.next_stream_position(item.tx), str(user),
                                    str(device), kind, payload, sender=sender, room_id=room_id,
                                    now_ms=item.received_ms, quota=self.inbox_quota):
                log.warning("welcome_dropped_inbox_full")  # spec/security.md, finding 10
                continue
            woken.add((str(user), str(device)))
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
            target = f"{FEDERATION_PREFIX}/rooms/{quote_id(room_id)}/events?from={start}&limit={HISTORY_PAGE}"
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
