"""Delivery: the per-device sync stream, acknowledgements and device-to-device messages.

One stream position (``stream_position``) orders everything a device can
receive: room events (``room_events.stream_pos``) and inbox items
(``inbox.stream_pos``). A sync token is a position. :meth:`Delivery.collect`
returns, after a token, the events of rooms the device was a member of at that
event (its ``room_members`` intervals; the ``create`` event is not pushed) and
the device's inbox items, merged in stream order, with the token to pass next.
Positions are handed out inside write transactions, which the database
serializes with its reads, so a read never sees a position without every
position before it, and ``next`` never skips anything.

Acknowledgement: passing a token (``since`` of a sync, or an ``ack`` frame on
the WebSocket) deletes the device's inbox items up to it. Room events stay (in
history). A token beyond the stream's end counts as its end.

Waiting: :meth:`Delivery.sync` long-polls on :class:`~server.delivery.wakeups.Wakeups`:
it watches the device before reading, so a write committed after the read wakes it.
Its deadline is on the injected clock: a wake-up after the deadline answers, and so
does the wait's own timer (the time left on the clock, at most the timeout).

Errors: :class:`~protocol.room_errors.InvalidSinceToken`, and for
:meth:`Delivery.send_to_device` :class:`~protocol.errors.NotFound` (unknown
target device), :class:`~protocol.room_errors.InboxFull` (a local target's inbox is at its
quota: nothing of the request is queued). Targets on other servers go to
:class:`RemoteDevices` (room federation).

Bounds (finding 10): an answer holds at most ``limit`` items and about
``max_sync_bytes`` bytes (:meth:`Delivery.collect`); when it stops short, ``next`` is
its last item's position and the client syncs again at once.
"""

from __future__ import annotations

from typing import Protocol

import aiosqlite

from protocol.api import Empty
from protocol.errors import NotFound
from protocol.ids import DeviceId, RoomId, UserId
from protocol.rooms_api import (
    Envelope,
    InboxItem,
    SendToDeviceRequest,
    SyncResponse,
    ToDeviceMessage,
    format_since,
)
from protocol.schema import pack_body
from server.rooms.storage import (
    current_stream_position,
    event_sizes_for_device,
    events_for_device_upto,
    find_txn,
    next_stream_position,
    store_txn,
)
from server.services.clock import Clock, now_ms
from server.services.sessions import Session
from server.storage import Database, devices

from . import inbox
from .fairness import MIN_PULL, DeviceShare
from .wakeups import Wakeups, device_key

__all__ = ["Delivery", "RemoteDevices", "ITEM_OVERHEAD", "READ_CHUNK", "DEFAULT_MAX_SYNC_BYTES"]

#: Bytes one item counts in a sync answer beyond its payload (ids, signature, framing).
ITEM_OVERHEAD = 256
#: Payload bytes read per hold of the database while a sync answer is built.
READ_CHUNK = 256 * 1024
#: ``delivery.max_sync_bytes`` by default.
DEFAULT_MAX_SYNC_BYTES = 1024 * 1024


def _chunk_ends(chosen: list[tuple[int, int]]) -> list[int]:
    """The last position of each run of ``chosen`` (position, size) worth ~READ_CHUNK bytes."""
    ends: list[int] = []
    acc = 0
    for i, (pos, size) in enumerate(chosen):
        acc += size + ITEM_OVERHEAD
        if acc >= READ_CHUNK or i == len(chosen) - 1:
            ends.append(pos)
            acc = 0
    return ends

class RemoteDevices(Protocol):
    """Other servers' devices (room federation): ``await enqueue_to_device(tx, sender,
    messages)`` queues payloads for them in the caller's transaction; ``wake()`` after it."""

    async def enqueue_to_device(self, tx: aiosqlite.Connection, sender: tuple[str, str],
                                messages: list[ToDeviceMessage]) -> None: ...

    def wake(self) -> None: ...


class Delivery:
    def __init__(self, db: Database, wakeups: Wakeups, remote_devices: RemoteDevices,
                 server_name: str, clock: Clock, *, quota: inbox.Quota = inbox.DEFAULT_QUOTA,
                 max_sync_bytes: int = DEFAULT_MAX_SYNC_BYTES, share: DeviceShare) -> None:
        self.db = db
        self.share = share
        self.quota = quota
        self.max_sync_bytes = max_sync_bytes
        self.wakeups = wakeups
        self.remote_devices = remote_devices
        self.server_name = server_name
        self.clock = clock

    # -- the stream ------------------------------------------------------------------------

    async def ack(self, user_id: str, device_id: str, position: int) -> int:
        """Acknowledge (delete) the device's inbox items up to ``position``; returns the
        position clamped to the stream's end."""
        async with self.db.read() as conn:
            position = min(position, await current_stream_position(conn))
            work = await inbox.has_acknowledged(conn, user_id, device_id, position)
        if work:
            async with self.db.transaction() as tx:
                await inbox.ack(tx, user_id, device_id, position)
        return position

    async def collect(self, user_id: str, device_id: str, since: int, limit: int) -> SyncResponse:
        """What the device has after ``since``: at most ``limit`` items in all, and at most
        :attr:`max_sync_bytes` of payload and :data:`ITEM_OVERHEAD` per item (always at
        least one item, however large). The sizes are read first (no payloads), then the
        chosen rows in chunks of about :data:`READ_CHUNK` bytes, each chunk its own hold of
        the database, so one big answer neither sits in memory twice nor holds the
        database for the whole build. Builds are one at a time per device and paced by its
        pull budget (:class:`~server.delivery.fairness.DeviceShare`)."""
        key = device_key(user_id, device_id)
        async with self.share.building(key):
            response, size = await self._collect(user_id, device_id, since, limit)
        self.share.pulled.spend(key, size)
        return response

    async def _collect(self, user_id: str, device_id: str, since: int,
                       limit: int) -> tuple[SyncResponse, int]:
        async with self.db.read() as conn:
            end = await current_stream_position(conn)
            ev_sizes = await event_sizes_for_device(conn, user_id, device_id, since, limit)
            in_sizes = await inbox.pending_sizes(conn, user_id, device_id, since, limit)
        merged = sorted([*ev_sizes, *((i.position, i.size) for i in in_sizes)])
        truncated = len(merged) > limit or len(ev_sizes) == limit or len(in_sizes) == limit
        chosen: list[tuple[int, int]] = []
        total = 0
        for pos, size in merged[:limit]:
            if chosen and total + size + ITEM_OVERHEAD > self.max_sync_bytes:
                truncated = True
                break
            chosen.append((pos, size))
            total += size + ITEM_OVERHEAD
        events: list[Envelope] = []
        items: list[InboxItem] = []
        lo = since
        for hi in _chunk_ends(chosen):
            async with self.db.read() as conn:
                events.extend(Envelope(e) for _, e in
                              await events_for_device_upto(conn, user_id, device_id, lo, hi))
                items.extend(_inbox_item(i) for i in
                             await inbox.items_upto(conn, user_id, device_id, lo, hi))
            lo = hi
        nxt = chosen[-1][0] if truncated and chosen else max(end, since)
        return SyncResponse(format_since(nxt), tuple(events), tuple(items),
                            truncated and bool(chosen)), total

    async def sync(self, session: Session, since: int, timeout_ms: int, limit: int) -> SyncResponse:
        """Acknowledge ``since``, then answer at once if anything is there, else wait up to
        ``timeout_ms`` for something to arrive."""
        user, device = str(session.user_id), str(session.device_id)
        self.share.pulled.spend(device_key(user, device), MIN_PULL)  # a request costs, even empty
        since = await self.ack(user, device, since)
        timeout = timeout_ms / 1000
        deadline = self.clock() + timeout
        expired = False
        while True:
            woken = self.wakeups.watch(device_key(user, device))
            response = await self.collect(user, device, since, limit)
            remaining = min(deadline - self.clock(), timeout)  # a clock set back waits no longer
            if response.events or response.inbox or expired or remaining <= 0 \
                    or self.wakeups.closed:
                return response
            expired = not await self.wakeups.wait(woken, remaining)

    # -- device-to-device ----------------------------------------------------------------------

    async def send_to_device(self, session: Session, req: SendToDeviceRequest) -> Empty:
        """Queue each payload in its target device's inbox, once per transaction id."""
        user, device = str(session.user_id), str(session.device_id)
        remote = [m for m in req.messages if m.user_id.server != self.server_name]
        now = now_ms(self.clock)
        async with self.db.transaction() as tx:  # serialized: one answer per txn_id
            if await find_txn(tx, user, device, "to_device", req.txn_id) is not None:
                return Empty()
            for m in req.messages:
                if m.user_id.server != self.server_name:
                    continue
                if await devices.get(tx, str(m.user_id), str(m.device_id)) is None:
                    raise NotFound(f"no device {m.device_id} of {m.user_id}")
                await inbox.push(tx, await next_stream_position(tx), str(m.user_id),
                                 str(m.device_id), "to_device", m.payload, sender=(user, device),
                                 room_id=None, now_ms=now, quota=self.quota)
            if remote:
                await self.remote_devices.enqueue_to_device(tx, (user, device), remote)
            await store_txn(tx, user, device, "to_device", req.txn_id, pack_body(Empty()), now)
        if remote:
            self.remote_devices.wake()
        self.wakeups.notify({device_key(str(m.user_id), str(m.device_id)) for m in req.messages})
        return Empty()


def _inbox_item(item: inbox.StoredItem) -> InboxItem:
    return InboxItem(
        item.position, item.kind, item.payload,
        UserId.parse(item.sender_user) if item.sender_user else None,
        DeviceId(item.sender_device) if item.sender_device else None,
        RoomId.parse(item.room_id) if item.room_id else None)
