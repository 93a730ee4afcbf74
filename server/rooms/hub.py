"""The hub: rooms created here are ordered here (``spec/client-server.md`` section 8).

:meth:`Hub.create_room` starts a room from its creator's GroupInfo;
:meth:`Hub.submit` accepts one MLSMessage for a room. Submissions to one room
are serialized by a per-room :class:`asyncio.Lock`, so of two racing commits
for an epoch exactly one is processed against that epoch and the other meets
the next one (``stale_epoch``). Whether a message is accepted, and what it
changes, is decided by the pure room core :mod:`protocol.room_rules` (``accept``,
then ``apply``, the transition a follower applies too); this module keeps the
locking, the batching and the I/O. An accepted message becomes the room's next
signed event (:mod:`protocol.events`); the event, the public group view, the
memberships derived from it, the Welcome's inbox items, the transaction id and
the transparency-log entry (queued in the audit outbox) are written in one
database transaction, and the log entry is appended before the answer. The
append happens after the room's lock is released (the room's next submission
does not wait for it; concurrent appends share one log transaction, see
:meth:`server.services.audit.AuditTrail.flush`); waiting devices are woken as
soon as the transaction has committed.

**Group commit of application messages.** An application message changes
nothing but the room's head, so under the room's lock it is checked, signed
as the next event and queued; the room's head moves in memory and the lock is
released. One writer task per room commits everything queued in ONE
transaction (bulk inserts, one fsync), then answers each request (a 200 is on
disk) and wakes the devices. Handshake messages (they change the public view)
take the slow path: under the room's lock they first commit what is queued,
then are processed and stored in a transaction of their own. A queued
submission's ``txn_id`` is known in memory until its batch has committed
(retries wait for the same answer), then kept among the recently committed
ones (:data:`RECENT_TXNS`), which covers the window between a retry's
database check (before the lock) and its lock. If a batch's transaction
fails, every request in it and every one queued behind it fails with the
error, nothing of them is in the database, and the cached room (whose head had
moved) is dropped so that the next submission reloads the last committed state.

The public view (:class:`crypto.mls.PublicGroup`) of recently used rooms is
kept in memory with the room's head (last seq, last event id, members). Only
code holding the room's lock touches it; any failure after the view was
changed drops the cached copy, so the next submission reloads it from the
database, where nothing changed. Rooms with uncommitted events are never
dropped by the cache's bound (:mod:`server.rooms.room_cache`).

Errors: :mod:`protocol.room_errors` (``unknown_room``, ``not_member``,
``sender_mismatch``, ``not_mls``, ``wrong_wire_format``, ``handshake_not_public``,
``application_not_private``, ``message_too_large``, ``stale_epoch``,
``mls_rejected``, ``welcome_invalid``, ``group_info_invalid``,
``member_identity_invalid``; ``unknown_device``, ``device_key_mismatch`` from
:mod:`.device_proof` for an added device its home server did not register under that key),
:mod:`protocol.channel_errors` (finding 9: ``group_id_invalid``,
``extension_not_allowed``, ``authenticated_data_not_empty``, ``proposal_not_allowed``,
``message_not_padded``, ``field_length_invalid``), :class:`~protocol.errors.BadRequest` for fields
that do not go with the message, ``conflict`` for a group that already has a room.
"""

from __future__ import annotations

import asyncio
import base64
import weakref
from collections import OrderedDict
from typing import Protocol

import aiosqlite
import structlog

from crypto.mls.public_group import PublicGroup
from crypto.primitives import sha256
from crypto.rng import Rng
from protocol.audit import RoomEvent
from protocol.events import (
    GENESIS_PREV,
    EventContent,
    EventKind,
    SignedEvent,
    sign_event,
)
from protocol.ids import RoomId
from protocol.room_errors import NotMember, UnknownRoom
from protocol.room_messages import Classified
from protocol.room_rules import (
    APPLICATION_PAST_EPOCHS,
    Accepted,
    Applied,
    Member,
    Submission,
    accept,
    accept_create,
    apply,
    decode_submission,
    next_content,
)
from protocol.rooms_api import (
    CreateRoomRequest,
    CreateRoomResponse,
    Envelope,
    EventsResponse,
    GroupInfoResponse,
    HubKeyResponse,
    RoomsResponse,
    RoomSummary,
    SendRequest,
    SendResponse,
)
from protocol.schema import decode_body, pack_body
from server.delivery import inbox
from server.delivery.wakeups import Wakeups, device_key
from server.services.audit import AuditTrail
from server.services.clock import Clock, now_ms, now_s
from server.services.sessions import Session
from server.storage import Database, devices

from . import access, storage
from .approved_devices import require_approved
from .device_proof import DeviceProof
from .room_cache import MAX_CACHED_ROOMS, CachedRoom, PendingEvent, RoomCache, TxnKey

__all__ = ["Hub", "HubFanOut", "RemoteRooms", "APPLICATION_PAST_EPOCHS", "MAX_CACHED_ROOMS", "RECENT_TXNS"]

log = structlog.get_logger("confide.rooms")

#: Transaction ids of committed submissions remembered in memory (see the module docstring):
#: they cover the commits between a retry's database check and its taking the room's lock;
#: when more than this many committed meanwhile, the retry asks the database again.
RECENT_TXNS = 256

class HubFanOut(Protocol):
    """Where the hub's accepted events go beyond this server (room federation's hub side).

    ``signing_key()`` is ``(key_id, seed)`` of the federation key events are signed
    with; ``on_event`` runs inside the transaction that stores an accepted event (fan-out
    to follower servers, remote Welcomes); ``wake()`` after its commit.
    """

    def signing_key(self) -> tuple[str, bytes]: ...

    async def on_event(self, tx: aiosqlite.Connection, event: SignedEvent, before: set[Member],
                       after: set[Member], welcome: bytes | None,
                       welcome_to: tuple[Member, ...]) -> None: ...

    def wake(self) -> None: ...


class RemoteRooms(Protocol):
    """Rooms hosted elsewhere, as this server's clients reach them (room federation's follower
    side): ``submit_remote`` forwards a local device's submission to the room's hub;
    ``group_info_remote`` asks the hub for its current GroupInfo; ``hub_keys`` is a hub's
    key document (this server's own or a peer's)."""

    async def submit_remote(self, session: Session, room_id: RoomId,
                            req: SendRequest) -> SendResponse: ...

    async def hub_keys(self, server: str) -> HubKeyResponse: ...

    async def group_info_remote(self, session: Session, room_id: RoomId) -> GroupInfoResponse: ...


class Hub:
    def __init__(self, db: Database, audit: AuditTrail, server_name: str, wakeups: Wakeups,
                 fan_out: HubFanOut, remote_rooms: RemoteRooms, device_proof: DeviceProof,
                 clock: Clock, rng: Rng) -> None:
        self.db = db
        self.device_proof = device_proof
        self.audit = audit
        self.server_name = server_name
        self.wakeups = wakeups
        self.fan_out = fan_out
        self.remote_rooms = remote_rooms
        self.clock = clock
        self.rng = rng
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._rooms = RoomCache()
        #: Queued submissions by transaction id, until their batch has committed.
        self._inflight: dict[TxnKey, asyncio.Future[SendResponse]] = {}
        #: The last :data:`RECENT_TXNS` committed ones (done futures), and how many so far.
        self._recent: OrderedDict[TxnKey, asyncio.Future[SendResponse]] = OrderedDict()
        self._committed_txns = 0

    def _sign(self, content: EventContent) -> SignedEvent:
        key_id, seed = self.fan_out.signing_key()
        return sign_event(seed, content, key_id)

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    async def _require_approved(self, members: set[tuple[str, str]] | frozenset) -> None:
        """No pending device of this server's users becomes a member (finding 2)."""
        if members:
            async with self.db.read() as conn:
                await require_approved(conn, self.server_name, members)

    # -- creation ----------------------------------------------------------------------------

    async def create_room(self, session: Session, req: CreateRoomRequest) -> CreateRoomResponse:
        """A new room whose only member is the calling device (see the module docstring)."""
        user, device = str(session.user_id), str(session.device_id)
        async with self._lock(f"create:{user}/{device}"):
            async with self.db.read() as conn:
                stored = await storage.find_txn(conn, user, device, "create", req.txn_id)
            if stored is not None:
                return decode_body(stored, CreateRoomResponse)
            await self._require_approved({(user, device)})
            view = accept_create(Submission((user, device), req.group_info), now_s(self.clock))
            room_id = RoomId(base64.urlsafe_b64encode(self.rng(15)).decode(), self.server_name)
            event = self._sign(EventContent(
                str(room_id), 0, GENESIS_PREV, view.epoch, EventKind.CREATE, user, device,
                now_ms(self.clock), req.group_info))
            applied = apply(None, view, event)
            response = CreateRoomResponse(room_id, 0, view.epoch, event.event_id.hex())
            async with self.db.transaction() as tx:
                await storage.write_event(tx, applied, now_ms=now_ms(self.clock))
                await storage.store_txn(tx, user, device, "create", req.txn_id, pack_body(response),
                                        now_ms(self.clock))
                await self.audit.record(tx, _log_entry(event))
            await self.audit.flush()
        self._rooms.put(CachedRoom(applied.head, view))
        log.info("room_created")
        return response

    # -- submission ----------------------------------------------------------------------------

    async def submit(self, session: Session, room_id: RoomId, req: SendRequest) -> SendResponse:
        """Accept one message for ``room_id`` as its next event (see the module docstring)."""
        user, device = str(session.user_id), str(session.device_id)
        rid = str(room_id)
        scope = f"send:{rid}"
        if room_id.server != self.server_name:
            await self._require_approved({(user, device)})
            return await self.remote_rooms.submit_remote(session, room_id, req)
        key: TxnKey = (user, device, scope, req.txn_id)
        mark = self._committed_txns
        stored = await self._find_txn(key)
        if stored is not None:  # its log entry may still be on its way: wait for it too
            await self.audit.flush()
            return stored
        waiter: asyncio.Future[SendResponse] | None
        kind: EventKind | None = None  # None: a retry of a queued or recent submission
        async with self._lock(rid):
            waiter = self._inflight.get(key)
            if waiter is None:
                waiter = self._recent.get(key)
            if waiter is None and self._committed_txns - mark > RECENT_TXNS:
                stored = await self._find_txn(key)  # committed meanwhile, and forgotten already
                if stored is not None:
                    await self.audit.flush()
                    return stored
            if waiter is None:
                room = await self._room(rid)
                classified = decode_submission(req.message)
                kind = classified.kind
                sub = Submission((user, device), req.message, req.welcome, req.group_info)
                if kind == EventKind.APPLICATION:
                    waiter = self._queue_application(room, classified, key, sub)
                else:
                    response = await self._submit_handshake(rid, classified, sub, key)
        if waiter is not None:
            response = await asyncio.shield(waiter)
        await self.audit.flush()
        if kind is not None:
            log.info("room_event_accepted", kind=kind.value)
        return response

    async def _find_txn(self, key: TxnKey) -> SendResponse | None:
        async with self.db.statement() as conn:
            stored = await storage.find_txn(conn, *key)
        return None if stored is None else decode_body(stored, SendResponse)

    def _queue_application(self, room: CachedRoom, c: Classified, key: TxnKey,
                           sub: Submission) -> asyncio.Future[SendResponse]:
        """Check, sign and queue an application message; the room's head moves in memory.
        No await: the room cannot change under it."""
        accepted = accept(room.head, room.view, sub, now_s(self.clock), c)
        event = self._sign(next_content(room.head, accepted, sub, now_ms(self.clock)))
        applied = apply(room.head, None, event)
        response = SendResponse(event.content.seq, event.event_id.hex(), room.head.epoch)
        future: asyncio.Future[SendResponse] = asyncio.get_running_loop().create_future()
        room.pending.append(PendingEvent(applied, key, response, future))
        room.head = applied.head
        self._inflight[key] = future
        if room.writer is None or room.writer.done():
            room.writer = asyncio.create_task(self._write_room(room))
        return future

    async def _write_room(self, room: CachedRoom) -> None:
        """The room's writer: commits what is queued, batch after batch, until nothing is."""
        while room.pending and not room.broken:
            async with room.commit_lock:
                await self._commit_pending(room)

    async def _commit_pending(self, room: CachedRoom) -> None:
        """Commit every queued event of ``room`` in one transaction, then answer them (the
        caller holds ``room.commit_lock``). On failure see :meth:`_fail_room`."""
        items, room.pending = room.pending, []
        if not items:
            return
        try:
            now = now_ms(self.clock)
            async with self.db.transaction() as tx:
                await storage.write_event(tx, *(p.applied for p in items), now_ms=now)
                await storage.store_txns(tx, [(*p.key, pack_body(p.response), now) for p in items])
                await self.audit.record_many(tx, [_log_entry(p.applied.event) for p in items])
                for p in items:
                    await self.fan_out.on_event(tx, p.applied.event, set(p.applied.before),
                                                set(p.applied.head.members), None, ())
        except BaseException as exc:
            self._fail_room(room, items, exc)
            if not isinstance(exc, Exception):
                raise
            log.warning("room_batch_failed", events=len(items), error=type(exc).__name__)
            return
        for p in items:
            self._answered(p.key, p.future, p.response)
        self.fan_out.wake()
        self.wakeups.notify(device_key(u, d) for u, d in room.head.members)

    def _answered(self, key: TxnKey, future: asyncio.Future[SendResponse],
                  response: SendResponse) -> None:
        """A committed submission: its answer goes out and its txn id is remembered."""
        self._inflight.pop(key, None)
        if not future.done():
            future.set_result(response)
        self._recent[key] = future
        self._committed_txns += 1
        while len(self._recent) > RECENT_TXNS:
            self._recent.popitem(last=False)

    def _fail_room(self, room: CachedRoom, items: list[PendingEvent], exc: BaseException) -> None:
        """A batch failed (rolled back): it and everything queued behind it fail with ``exc``;
        the cached room is dropped (its head had moved past the database's)."""
        room.broken = True
        self._rooms.drop(room)
        failed, room.pending = items + room.pending, []
        for p in failed:
            if self._inflight.get(p.key) is p.future:
                del self._inflight[p.key]
            if not p.future.done():
                if isinstance(exc, Exception):
                    p.future.set_exception(exc)
                else:
                    p.future.cancel()
            if not p.future.cancelled():
                p.future.exception()  # retrieved here: a waiter may have gone

    async def _submit_handshake(self, rid: str, classified: Classified, sub: Submission,
                                key: TxnKey) -> SendResponse:
        """The slow path (the caller holds the room's lock): commit what is queued, then
        decide through :func:`protocol.room_rules.accept` and store the handshake in its own
        transaction."""
        while True:
            room = await self._room(rid)
            async with room.commit_lock:
                await self._commit_pending(room)
                if room.broken:
                    continue  # the queue failed: start again from the committed state
                try:
                    accepted = accept(room.head, room.view, sub, now_s(self.clock), classified)
                    await self.device_proof.check(accepted.added_devices)
                    event = self._sign(next_content(room.head, accepted, sub, now_ms(self.clock)))
                    applied = apply(room.head, room.view, event, accepted.group_info)
                    await self._require_approved(applied.added)
                    response = SendResponse(event.content.seq, event.event_id.hex(),
                                            applied.head.epoch)
                    await self._store(applied, accepted, key, response)
                except BaseException:
                    room.broken = True
                    self._rooms.drop(room)  # the view may have moved: reload it next time
                    raise
                room.head = applied.head
                done: asyncio.Future[SendResponse] = asyncio.get_running_loop().create_future()
                self._answered(key, done, response)
                self.fan_out.wake()
                self.wakeups.notify(device_key(u, d) for u, d in applied.before | applied.head.members
                                    | set(accepted.welcome_to))
                return response

    async def _store(self, applied: Applied, accepted: Accepted, key: TxnKey,
                     response: SendResponse) -> None:
        """One transaction: the event and its rows, the Welcome's inbox items for this
        server's devices, the txn id, the log entry and the federation fan-out."""
        now = now_ms(self.clock)
        sender, room_id = (key[0], key[1]), applied.head.room_id
        async with self.db.transaction() as tx:
            await storage.write_event(tx, applied, now_ms=now)
            for u, d in accepted.welcome_to:
                if u.endswith(f":{self.server_name}") and await devices.get(tx, u, d) is not None:
                    await inbox.push(tx, await storage.next_stream_position(tx), u, d, "welcome",
                                     accepted.welcome or b"", sender=sender, room_id=room_id,
                                     now_ms=now)
            await storage.store_txn(tx, *key, pack_body(response), now)
            await self.audit.record(tx, _log_entry(applied.event))
            await self.fan_out.on_event(tx, applied.event, set(applied.before),
                                        set(applied.head.members), accepted.welcome,
                                        accepted.welcome_to)

    # -- reads -------------------------------------------------------------------------------------

    async def rooms(self, session: Session) -> RoomsResponse:
        async with self.db.read() as conn:
            rows = await storage.device_rooms(conn, str(session.user_id), str(session.device_id))
        return RoomsResponse(tuple(RoomSummary(RoomId.parse(r), e, s) for r, e, s in rows))

    async def history(self, session: Session, room_id: RoomId, from_seq: int,
                      limit: int) -> EventsResponse:
        """Events from ``from_seq`` that the device may read (its membership intervals)."""
        user, device = str(session.user_id), str(session.device_id)
        async with self.db.read() as conn:
            await access.known_room(conn, str(room_id))
            if not await storage.is_visible_member(conn, str(room_id), user, device):
                raise NotMember("the device is not a member of this room")
            events = await storage.events_in_range(conn, str(room_id), user, device, from_seq, limit)
        nxt = events[-1].content.seq + 1 if events else from_seq
        return EventsResponse(tuple(Envelope(e) for e in events), nxt)

    async def group_info(self, session: Session, room_id: RoomId) -> GroupInfoResponse:
        """The latest GroupInfo a member uploaded; for users with a member device. For a room
        hosted elsewhere, the hub's current one (room federation asks it). A pending device
        gets ``device_not_approved`` (the GroupInfo names the members)."""
        await self._require_approved({(str(session.user_id), str(session.device_id))})
        if room_id.server != self.server_name:
            return await self.remote_rooms.group_info_remote(session, room_id)
        async with self.db.read() as conn:
            room = await access.room_of_member_user(conn, str(room_id), str(session.user_id))
        return GroupInfoResponse(room.group_info, room.group_info_epoch)

    async def prune_txns(self, max_age_ms: int) -> int:
        async with self.db.transaction() as tx:
            return await storage.prune_txns(tx, now_ms(self.clock) - max_age_ms)

    # -- the cache ---------------------------------------------------------------------------------

    async def _room(self, room_id: str) -> CachedRoom:
        room = self._rooms.get(room_id)
        if room is not None:
            return room
        async with self.db.read() as conn:
            found = await storage.load_head(conn, room_id)
        if found is None:
            raise UnknownRoom("no such room")
        head, stored = found
        room = CachedRoom(head, PublicGroup.from_bytes(stored.view))
        self._rooms.put(room)
        return room


def _log_entry(event: SignedEvent) -> RoomEvent:
    c = event.content
    return RoomEvent(c.ts, c.room_id, c.seq, event.event_id, c.sender_user, c.sender_device,
                     c.kind.value, c.epoch, sha256(c.message), len(c.message))

